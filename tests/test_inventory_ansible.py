"""The real `ansible-inventory` (and `ansible --list-hosts`) as the judge of how we read inventories.

Every case under tests/fixtures/inventories/ is read by both, with the same -i list (sources.txt, after the
shared ca.yml that gives every host a CA key): the groups (hosts and children, in order), the host list and
every variable but `sshd_setup` must be identical, and apply's HostEntry must take its connection from
exactly those values. Each documented difference (README, "Inventory: differences from Ansible") is
asserted as such below, never left silent. Ansible runs with a private HOME and ANSIBLE_CONFIG in tmp.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sshd_setup.ansible_inventory.patterns import select_hosts
from sshd_setup.commands.inventory import run_inventory
from sshd_setup.errors import InputError
from sshd_setup.inventory import SETTINGS_VAR, load_inventory
from tests.helpers import CA_KEY

CORPUS = Path(__file__).parent / "fixtures" / "inventories"
CA_SOURCE = CORPUS / "ca.yml"
CASES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())
BIN = Path(sys.executable).parent
# Ansible cannot read a JSON listing as a plain file (its yaml plugin wants mappings): it reads it through a
# script that prints it. The test below asserts that difference.
ANSIBLE_SOURCES = {"15-json-listing": ["via-script.sh"]}


def _tool(name: str) -> Path:
    path = BIN / name
    if not path.exists():
        found = shutil.which(name)
        if found is None:
            pytest.skip(f"{name} (ansible-core, a dev dependency) is not installed")
        path = Path(found)
    return path


@pytest.fixture
def ansible_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "ansible-home"
    (home / "tmp").mkdir(parents=True)
    config = home / "ansible.cfg"
    config.write_text("[defaults]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        HOME=str(home),
        ANSIBLE_CONFIG=str(config),
        ANSIBLE_LOCAL_TEMP=str(home / "tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_DEPRECATION_WARNINGS="false",
        ANSIBLE_INVENTORY_UNPARSED_FAILED="true",
        ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED="true",
    )
    return env


def _sources(case: str, ansible: bool = False) -> list[Path]:
    base = CORPUS / case
    names = ANSIBLE_SOURCES.get(case) if ansible else None
    names = names or (base / "sources.txt").read_text().split()
    return [CA_SOURCE, *(Path(name) if "," in name else base / name for name in names)]  # a,b: a host list


def _args(sources: list[Path]) -> list[str]:
    return [arg for source in sources for arg in ("-i", str(source))]


def ansible_list(sources: list[Path], env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run(
        [str(_tool("ansible-inventory")), *_args(sources), "--list"],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout))


def ours_list(sources: list[Path], capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    capsys.readouterr()
    assert run_inventory(inventory=sources, limit=None, host=None, graph=False, group=None) == 0
    return dict(json.loads(capsys.readouterr().out))


def _without_settings(listing: dict[str, Any]) -> dict[str, Any]:
    result = json.loads(json.dumps(listing))
    result["_meta"].pop("profile", None)
    for values in result["_meta"]["hostvars"].values():
        values.pop(SETTINGS_VAR, None)
    result["_meta"]["hostvars"] = {h: v for h, v in result["_meta"]["hostvars"].items() if v}
    return dict(result)


def _hosts(listing: dict[str, Any]) -> set[str]:
    return {h for name, group in listing.items() if name != "_meta" for h in group.get("hosts", [])}


def test_the_corpus_is_big_enough() -> None:
    assert len(CASES) >= 25


@pytest.mark.parametrize("case", CASES)
def test_we_read_every_case_as_ansible_does(
    case: str, ansible_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    theirs = ansible_list(_sources(case, ansible=True), ansible_env)
    ours = ours_list(_sources(case), capsys)
    assert _hosts(ours) == _hosts(theirs) and _hosts(ours)
    assert _without_settings(ours) == _without_settings(theirs)

    # apply's HostEntry takes its connection from exactly these values
    inventory = load_inventory(_sources(case))
    assert set(inventory.hosts) == _hosts(theirs)
    for name, entry in inventory.hosts.items():
        values = theirs["_meta"]["hostvars"].get(name, {})
        assert entry.address == values.get("ansible_host", name)
        assert entry.port == (int(values["ansible_port"]) if "ansible_port" in values else None)
        assert entry.user == values.get("ansible_user")
        key_file = values.get("ansible_ssh_private_key_file", values.get("ansible_private_key_file"))
        assert entry.key_file == (os.path.expanduser(key_file) if key_file else None)
        assert entry.become == (str(values.get("ansible_become", False)).lower() in ("true", "yes", "on", "1"))
        assert entry.connection == {"local": "local"}.get(values.get("ansible_connection", "ssh"), "ssh")
        assert set(entry.groups) == {g for g, members in inventory.groups.items() if name in members} - {"all"}


@pytest.mark.parametrize("case", ["01-ini-basic", "17-ini-children-forward", "27-several-directories"])
def test_graph_is_ansible_inventorys_graph(
    case: str, ansible_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    proc = subprocess.run(
        [str(_tool("ansible-inventory")), *_args(_sources(case)), "--graph"],
        capture_output=True,
        text=True,
        env=ansible_env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    capsys.readouterr()
    run_inventory(inventory=_sources(case), limit=None, host=None, graph=True, group=None)
    assert capsys.readouterr().out == proc.stdout


def test_difference_ansible_reads_a_json_listing_only_through_a_script(
    ansible_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    listing = [CA_SOURCE, CORPUS / "15-json-listing" / "inventory.json"]
    proc = subprocess.run(
        [str(_tool("ansible-inventory")), *_args(listing), "--list"],
        capture_output=True,
        text=True,
        env=ansible_env,
        check=False,
    )
    assert proc.returncode != 0 and "inventory.json" in proc.stderr
    assert "web1" in _hosts(ours_list(listing, capsys))


def test_difference_sshd_setup_merges_per_key_where_ansible_replaces(
    tmp_path: Path, ansible_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "inventory.yml"
    path.write_text(
        "all:\n"
        f"  vars:\n    sshd_setup: {{ca_keys: ['{CA_KEY}'], allow_all: true}}\n"
        "  hosts:\n    web1:\n      sshd_setup: {backups_keep: 3}\n"
    )
    theirs = ansible_list([path], ansible_env)["_meta"]["hostvars"]["web1"][SETTINGS_VAR]
    ours = ours_list([path], capsys)["_meta"]["hostvars"]["web1"][SETTINGS_VAR]
    assert theirs == {"backups_keep": 3}
    assert ours == {"ca_keys": [CA_KEY], "allow_all": True, "backups_keep": 3}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("all:\n  hosts:\n    web1: {}\n    web1: {ansible_port: 2}\n", "duplicate key"),
        ("all:\n  hostz:\n    web1:\n  hosts:\n    web2:\n", "unknown group key"),
        ("all:\n  hosts:\n    web2:\nweb: [web1]\n", "must be a mapping"),
    ],
)
def test_difference_we_refuse_what_ansible_only_warns_about(
    text: str, problem: str, tmp_path: Path, ansible_env: dict[str, str]
) -> None:
    path = tmp_path / "inventory.yml"
    path.write_text(text.replace("all:\n", f"all:\n  vars:\n    sshd_setup: {{ca_keys: ['{CA_KEY}']}}\n", 1))
    ansible_list([path], ansible_env)  # Ansible: exit 0 (a warning)
    with pytest.raises(InputError, match=problem):
        load_inventory(path)


LIMITS = [
    ("03-ini-ranges", "web[0]"),
    ("03-ini-ranges", "web[-1]"),
    ("03-ini-ranges", "web[1:3]"),
    ("03-ini-ranges", "web[2:]"),
    ("03-ini-ranges", "db-*"),
    ("03-ini-ranges", "~app[35]"),
    ("03-ini-ranges", "web:db"),
    ("03-ini-ranges", "all,!web,!odd"),
    ("03-ini-ranges", "web*,&~web0[13]"),
    ("03-ini-ranges", "web0?,!web03"),
    ("16-ungrouped", "ungrouped"),
    ("05-precedence-ini", "parent[1]"),
    ("01-ini-basic", "prod,lonely"),
]


@pytest.mark.parametrize(("case", "pattern"), LIMITS)
def test_limit_selects_what_ansible_selects(case: str, pattern: str, ansible_env: dict[str, str]) -> None:
    sources = _sources(case)
    proc = subprocess.run(
        [str(_tool("ansible")), "all", *_args(sources), "--limit", pattern, "--list-hosts"],
        capture_output=True,
        text=True,
        env=ansible_env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    theirs = {line.strip() for line in proc.stdout.splitlines()[1:] if line.strip()}
    inventory = load_inventory(sources)
    assert set(select_hosts(pattern, list(inventory.hosts), inventory.groups)) == theirs


def test_host_is_ansible_inventorys_host(ansible_env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    sources = _sources("07-group-vars-files")
    proc = subprocess.run(
        [str(_tool("ansible-inventory")), *_args(sources), "--host", "web2"],
        capture_output=True,
        text=True,
        env=ansible_env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    capsys.readouterr()
    run_inventory(inventory=sources, limit=None, host="web2", graph=False, group=None)
    ours = json.loads(capsys.readouterr().out)
    assert ours == json.loads(proc.stdout) and ours["ansible_user"] == "file_web2"


def test_limit_file_selects_what_ansible_selects(tmp_path: Path, ansible_env: dict[str, str]) -> None:
    limit_file = tmp_path / "retry"
    limit_file.write_text("web[0]\n\ndb-b\n")
    sources = _sources("03-ini-ranges")
    proc = subprocess.run(
        [str(_tool("ansible")), "all", *_args(sources), "--limit", f"@{limit_file}", "--list-hosts"],
        capture_output=True,
        text=True,
        env=ansible_env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    theirs = {line.strip() for line in proc.stdout.splitlines()[1:] if line.strip()}
    inventory = load_inventory(sources)
    assert set(select_hosts(f"@{limit_file}", list(inventory.hosts), inventory.groups)) == theirs == {"web01", "db-b"}


def test_difference_templated_connection_vars_are_refused_not_used_as_text(
    tmp_path: Path, ansible_env: dict[str, str]
) -> None:
    path = tmp_path / "hosts.ini"
    path.write_text("[web]\nweb1 ansible_host='{{ inventory_hostname }}.example.com'\n")
    theirs = ansible_list([CA_SOURCE, path], ansible_env)["_meta"]["hostvars"]["web1"]
    assert theirs["ansible_host"] == "{{ inventory_hostname }}.example.com"  # Ansible renders it later
    with pytest.raises(InputError, match=r"hosts.ini:2: ansible_host: Jinja templates are not evaluated"):
        load_inventory([CA_SOURCE, path])
