"""Inventories: Ansible's YAML and INI formats, per-key merging, --limit patterns, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sshd_setup.errors import InputError
from sshd_setup.inventory import load_inventory, select_hosts
from tests.helpers import CA_KEY

GOOD = f"""
all:
  vars:
    ansible_user: root
    sshd_setup:
      ca_keys: ["{CA_KEY}"]
      principals:
        - {{user: johndoe, principal: jdoe@example.com}}
  children:
    web:
      vars:
        sshd_setup: {{allow_all: true}}
      hosts:
        web1: {{ansible_host: 192.0.2.10, ansible_port: 2200}}
        web2:
          sshd_setup:
            principals: [{{user: ops, any_principal: true}}]
    db:
      children:
        pg:
          hosts:
            db1: {{ansible_become: "yes", ansible_connection: local}}
"""


def write(tmp_path: Path, text: str, name: str = "inventory.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_settings_merge_per_key_from_all_down_to_the_host(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, GOOD))
    web1, web2, db1 = inv.hosts["web1"], inv.hosts["web2"], inv.hosts["db1"]
    assert web1.desired.allow_all and web2.desired.allow_all and not db1.desired.allow_all
    assert [m.user for m in web1.desired.mappings] == ["johndoe"]
    assert [m.user for m in web2.desired.mappings] == ["ops"]  # the host's list replaces the group's
    assert web1.desired.mappings[0].principals == ("jdoe",)  # e-mail → prefix
    assert (web1.address, web1.port, web1.user) == ("192.0.2.10", 2200, "root")
    assert db1.become and db1.is_local and db1.address == "db1"
    assert set(inv.groups["db"]) == {"db1"} and set(inv.groups["all"]) == {"web1", "web2", "db1"}


def test_ini_inventory_with_group_vars_directory(tmp_path: Path) -> None:
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text(f'sshd_setup:\n  ca_keys: ["{CA_KEY}"]\n')
    path = write(
        tmp_path,
        """
        [web]
        web1 ansible_host=192.0.2.10 ansible_port=22
        web2 ansible_host=192.0.2.11 sshd_setup='{"allow_all": true}'

        [prod:children]
        web

        [prod:vars]
        ansible_user=deploy
        """,
        "hosts.ini",
    )
    inv = load_inventory(path)
    assert inv.hosts["web1"].user == "deploy" and inv.hosts["web1"].port == 22
    assert inv.hosts["web2"].desired.allow_all and not inv.hosts["web1"].desired.allow_all
    assert set(inv.groups["prod"]) == {"web1", "web2"}


def test_email_prefix_collisions_warn(tmp_path: Path) -> None:
    text = GOOD.replace(
        "{user: johndoe, principal: jdoe@example.com}",
        "{user: johndoe, principals: [jdoe@example.com, jdoe@other.org]}",
    )
    inv = load_inventory(write(tmp_path, text))
    assert any("jdoe@example.com and jdoe@other.org share the prefix 'jdoe'" in w for w in inv.warnings)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("all", ["web1", "web2", "db1"]),
        ("web", ["web1", "web2"]),
        ("web1,db1", ["web1", "db1"]),
        ("web*", ["web1", "web2"]),
        ("all,!web2", ["web1", "db1"]),
        ("web,&web1", ["web1"]),
        ("db:web1", ["web1", "db1"]),
        ("~^w.*2$", ["web2"]),
    ],
)
def test_limit_patterns(pattern: str, expected: list[str]) -> None:
    groups = {"all": {"web1", "web2", "db1"}, "web": {"web1", "web2"}, "db": {"db1"}}
    assert select_hosts(pattern, ["web1", "web2", "db1"], groups) == expected


def test_limit_that_matches_nothing_is_bad_input() -> None:
    with pytest.raises(InputError, match="nosuch"):
        select_hosts("nosuch", ["a"], {"all": {"a"}})


ROOT_VARS = f'    sshd_setup:\n      ca_keys: ["{CA_KEY}"]\n'
BAD = {
    "unknown key with did-you-mean": ("    sshd_setup:\n      ca_key: []\n", "ca_key", "did you mean 'ca_keys'"),
    "not a key": ('    sshd_setup:\n      ca_keys: ["ssh-ed25519 AA!A not-base64"]\n', "ca_keys[0]", "base64"),
    "key of wrong type": (
        '    sshd_setup:\n      ca_keys: ["ssh-dss AAAAB3NzaC1kc3M="]\n',
        "ca_keys[0]",
        "unknown key type",
    ),
    "truncated key": (
        '    sshd_setup:\n      ca_keys: ["ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAI"]\n',
        "ca_keys[0]",
        "truncated",
    ),
    "no ca key": ("    sshd_setup:\n      allow_all: true\n", "sshd_setup", "no CA key"),
    "user with space": (
        ROOT_VARS + '      principals: [{user: "john doe", principal: jdoe}]\n',
        "principals[0].user",
        "whitespace",
    ),
    "principal with quote": (
        ROOT_VARS + '      principals: [{user: john, principal: "j\'doe"}]\n',
        "principals[0].principal",
        "quote",
    ),
    "principal with percent": (
        ROOT_VARS + '      principals: [{user: john, principal: "%u"}]\n',
        "principals[0].principal",
        "'%'",
    ),
    "principal with comma": (
        ROOT_VARS + '      principals: [{user: john, principals: ["a,b"]}]\n',
        "principals[0].principals[0]",
        "comma",
    ),
    "principal with newline": (
        ROOT_VARS + '      principals: [{user: john, principal: "a\\nMatch all"}]\n',
        "principals[0].principal",
        "line break",
    ),
    "user with leading dash": (
        ROOT_VARS + '      principals: [{user: "-oProxyCommand", principal: a}]\n',
        "principals[0].user",
        "'-'",
    ),
    "wildcard user": (ROOT_VARS + '      principals: [{user: "*", principal: a}]\n', "principals[0].user", "wildcard"),
    "relative ca_path": (ROOT_VARS + "      ca_path: etc/ssh/ca.pub\n", "ca_path", "absolute"),
    "unnormalised path": (ROOT_VARS + "      ca_path: /etc/ssh/../ca.pub\n", "ca_path", "normalised"),
    "two modes in one mapping": (
        ROOT_VARS + "      principals: [{user: a, principal: b, any_principal: true}]\n",
        "principals[0]",
        "exactly one",
    ),
    "user mapped twice": (
        ROOT_VARS + "      principals: [{user: a, principal: b}, {user: a, principal: c}]\n",
        "principals[1]",
        "mapped twice",
    ),
    "allow_all not a bool": (ROOT_VARS + "      allow_all: 'yes please'\n", "allow_all", "true or false"),
    "file without list": (
        ROOT_VARS + "      principals: [{user: a, principal: b, file: /etc/x}]\n",
        "principals[0].file",
        "only with",
    ),
    "empty principals list": (
        ROOT_VARS + "      principals: [{user: a, principals: []}]\n",
        "principals[0].principals",
        "empty",
    ),
    "unknown mapping key": (
        ROOT_VARS + "      principals: [{usr: a, principal: b}]\n",
        "principals[0].usr",
        "did you mean 'user'",
    ),
    "missing ca_keys_file": ("    sshd_setup:\n      ca_keys_file: keys/nope.pub\n", "ca_keys_file", "does not exist"),
    "bad port": (ROOT_VARS + "    ansible_port: 99999\n", "ansible_port", "port number"),
    "bad connection": (ROOT_VARS + "    ansible_connection: winrm\n", "ansible_connection", "unsupported"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_inventory_is_one_clear_line_and_exit_2(case: str, tmp_path: Path) -> None:
    vars_text, key, problem = BAD[case]
    path = tmp_path / "inventory.yml"
    path.write_text("all:\n  vars:\n" + vars_text + "  hosts:\n    web1: {ansible_host: 192.0.2.10}\n")
    root = tmp_path / "root"
    (root / "etc" / "ssh").mkdir(parents=True)
    (root / "etc" / "ssh" / "sshd_config").write_text("UsePAM yes\n")
    before = sorted(p.name for p in root.rglob("*"))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sshd_setup",
            "render",
            "-i",
            str(path),
            "--host",
            "web1",
            "--root",
            str(root),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert str(path) in lines[0] and key in lines[0] and problem in lines[0], lines[0]
    assert not (tmp_path / "out").exists() and sorted(p.name for p in root.rglob("*")) == before


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("all:\n  hosts:\n    web1: {a: 1\n", "invalid YAML"),
        ("all:\n  hosts:\n    web1: {}\n    web1: {}\n", "duplicate key"),
        ("all:\n  hosts: [web1]\n", "must be a mapping"),
        ("all:\n  hostz: {}\n", "unknown group key"),
        ("all:\n  hosts:\n    'web 1': {}\n", "host name"),
    ],
)
def test_structurally_bad_inventories(text: str, problem: str, tmp_path: Path) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError, match=problem) as caught:
        load_inventory(path)
    assert str(path) in str(caught.value)


def test_vars_files_naming_nothing_are_warned_about(tmp_path: Path) -> None:
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "group_vars" / "wbe.yml").write_text("ansible_user: typo\n")
    (tmp_path / "group_vars" / "web.yml").write_text("ansible_user: fine\n")
    (tmp_path / "host_vars" / "web9.yml").write_text("ansible_port: 22\n")
    path = write(tmp_path, GOOD)
    inv = load_inventory(path)
    assert inv.hosts["web1"].user == "fine"
    unused = [w for w in inv.warnings if "names no" in w]
    assert unused == [
        f"{tmp_path / 'group_vars' / 'wbe.yml'}: names no group of the inventory (ignored)",
        f"{tmp_path / 'host_vars' / 'web9.yml'}: names no host of the inventory (ignored)",
    ]


def test_several_sources_merge_in_order_and_a_directory_reads_its_files(tmp_path: Path) -> None:
    first = write(tmp_path, GOOD)
    second = tmp_path / "more"
    (second / "group_vars").mkdir(parents=True)
    (second / "a.ini").write_text("[web]\nweb3\nweb1 ansible_port=2300\n")
    (second / "b.yml").write_text("all:\n  children:\n    web:\n      hosts:\n        web4:\n")
    (second / "group_vars" / "web.yml").write_text("ansible_user: fromdir\n")
    (second / "notes.txt").write_text("[web]\nnever\n")
    inv = load_inventory([first, second])
    assert list(inv.hosts) == ["web1", "web2", "db1", "web3", "web4"]
    assert inv.groups["web"] == ["web1", "web2", "web3", "web4"]
    assert inv.hosts["web1"].port == 2300 and inv.hosts["web3"].user == "fromdir"
    assert inv.hosts["web3"].desired.allow_all  # the first source's group vars apply to the second's hosts


def test_script_listing_accepts_a_list_as_a_groups_hosts(tmp_path: Path) -> None:
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps({"db": ["db1"], "all": {"vars": {"sshd_setup": {"ca_keys": [CA_KEY]}}}}))
    assert load_inventory(path).groups["db"] == ["db1"]
