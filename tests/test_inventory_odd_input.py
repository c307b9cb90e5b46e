"""Odd and hostile inventories through the real entry point (sshd_setup.cli.main): one line, exit 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from sshd_setup import cli
from tests.helpers import CA_KEY

CA_VARS = f"  vars:\n    sshd_setup: {{ca_keys: ['{CA_KEY}']}}\n"
GOOD_YAML = "all:\n" + CA_VARS + "  hosts:\n    web1:\n"


def _file(name: str, content: str | bytes, mode: int = 0o644) -> Callable[[Path], list[str]]:
    def make(tmp: Path) -> list[str]:
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        path.chmod(mode)
        return ["-i", str(path)]

    return make


def _with_vars(vars_name: str, vars_text: str | bytes) -> Callable[[Path], list[str]]:
    """A good inventory (web1 in group web) next to a bad group_vars/host_vars file."""

    def make(tmp: Path) -> list[str]:
        args = _file("inventory.yml", "all:\n" + CA_VARS + "  children:\n    web:\n      hosts:\n        web1:\n")(tmp)
        _file(vars_name, vars_text)(tmp)
        return args

    return make


def _script(body: str) -> Callable[[Path], list[str]]:
    return _file("dynamic.sh", "#!/bin/sh\n" + body, 0o755)


def _empty_dir(tmp: Path) -> list[str]:
    (tmp / "inv").mkdir()
    return ["-i", str(tmp / "inv")]


def _ignored_only_dir(tmp: Path) -> list[str]:
    (tmp / "inv" / "group_vars").mkdir(parents=True)
    (tmp / "inv" / "README.md").write_text("# hello\n")
    (tmp / "inv" / "group_vars" / "all.yml").write_text("x: 1\n")
    return ["-i", str(tmp / "inv")]


def _fifo(tmp: Path) -> list[str]:
    os.mkfifo(tmp / "inventory.yml")
    return ["-i", str(tmp / "inventory.yml")]


def _dangling(tmp: Path) -> list[str]:
    (tmp / "inventory.yml").symlink_to(tmp / "gone.yml")
    return ["-i", str(tmp / "inventory.yml")]


def _vars_fifo(tmp: Path) -> list[str]:
    """A named pipe where group_vars/web.yml belongs would block a reader forever."""
    args = _with_vars("group_vars/all.yml", "x: 1\n")(tmp)
    os.mkfifo(tmp / "group_vars" / "web.yml")
    return args


def _symlink_loop(tmp: Path) -> list[str]:
    (tmp / "inv").mkdir()
    (tmp / "inv" / "hosts.ini").write_text("[web]\nweb1\n")
    (tmp / "inv" / "again").symlink_to(tmp / "inv")
    return ["-i", str(tmp / "inv")]


def _limit(pattern: str) -> Callable[[Path], list[str]]:
    def make(tmp: Path) -> list[str]:
        return [*_file("inventory.yml", GOOD_YAML)(tmp), "--limit", pattern]

    return make


CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "mapping used as a host key": (_file("inventory.yml", "all:\n  hosts:\n    ? {a: 1}\n    : {}\n"), "used as a key"),
    "list used as a group key": (_file("inventory.yml", "? [a, b]\n: {}\n"), "used as a key"),
    "mapping key in group_vars": (_with_vars("group_vars/web.yml", "? {x: 1}\n: 2\n"), "group_vars/web.yml"),
    "group body a list": (_file("inventory.yml", "all:\n  hosts:\n    web1:\nweb: [a]\n"), "must be a mapping"),
    "vars a list": (_file("inventory.yml", "all:\n  vars: [1]\n  hosts:\n    web1:\n"), "vars must be a mapping"),
    "host vars a list": (_file("inventory.yml", "all:\n  hosts:\n    web1: [1]\n"), "must be a mapping"),
    "children a number": (_file("inventory.yml", "all:\n  children: 5\n"), "children must be a mapping"),
    "YAML file is a list": (_file("inventory.yml", "- a\n- b\n"), "must be a mapping of groups"),
    "empty YAML file": (_file("inventory.yml", ""), "must be a mapping of groups"),
    "integer host name": (_file("inventory.yml", "all:\n  hosts:\n    1234:\n"), "non-string key"),
    "duplicate YAML keys": (_file("inventory.yml", "all:\n  hosts:\n    a:\n    a:\n"), "duplicate key"),
    "duplicate JSON keys": (_file("inventory.json", '{"web": {"hosts": ["a"]}, "web": {}}'), "duplicate key"),
    "not UTF-8": (_file("inventory.yml", b"all:\n  hosts:\n    caf\xe9:\n"), "not UTF-8"),
    "not UTF-8 INI": (_file("hosts.ini", b"[web]\nh\xff\n"), "not UTF-8"),
    "NUL bytes": (_file("inventory.yml", b"all:\x00\n"), "NUL"),
    "nested too deeply": (_file("inventory.yml", "[" * 5000), "invalid YAML"),
    "empty directory": (_empty_dir, "no inventory file"),
    "directory of ignored files only": (_ignored_only_dir, "no inventory file"),
    "named pipe": (_fifo, "not a regular file"),
    "directory symlink loop": (_symlink_loop, "symlink loop"),
    "named pipe in group_vars": (_vars_fifo, "web.yml: is a named pipe, not a regular file"),
    "dangling symlink": (_dangling, "no such file"),
    "host list with a bad name": (lambda tmp: ["-i", "web1,we$b,"], "host name"),
    "host list with a bad port": (lambda tmp: ["-i", "web1:0,"], "outside 1-65535"),
    "missing -i": (lambda tmp: ["-i", str(tmp / "nope.yml")], "no such inventory"),
    "INI bad section": (_file("hosts.ini", "[web\nh1\n"), "unbalanced bracket"),
    "INI unknown section type": (_file("hosts.ini", "[web:hosts2]\nh1\n"), "unknown type"),
    "INI undeclared child": (_file("hosts.ini", "[web:children]\nnever\n"), "never declared"),
    "INI vars of an undeclared group": (_file("hosts.ini", "[h]\nh1\n[ghost:vars]\nx=1\n"), "never declared"),
    "INI unbalanced quote": (_file("hosts.ini", "[web]\nh1 x='a\n"), "cannot read host line"),
    "INI host ending in colon": (_file("hosts.ini", "[web]\nh1:\n"), "reserved for a port"),
    "INI bare word after host": (_file("hosts.ini", "[web]\nh1 oops\n"), "expected key=value"),
    "group loop": (_file("hosts.ini", "[a:children]\nb\n[b:children]\na\n[b]\nh1\n"), "loop"),
    "range without end": (_file("hosts.ini", "[web]\nweb[1:]\n"), "no end"),
    "range mixed": (_file("hosts.ini", "[web]\nweb[a:9]\n"), "numbers or single letters"),
    "range backwards": (_file("hosts.ini", "[web]\nweb[9:1]\n"), "begin <= end"),
    "range widths": (_file("hosts.ini", "[web]\nweb[01:100]\n"), "same width"),
    "range step zero": (_file("hosts.ini", "[web]\nweb[1:9:0]\n"), "step"),
    "range too big": (_file("hosts.ini", "[web]\nweb[1:9999999]\n"), "more than"),
    "range bracket": (_file("hosts.ini", "[web]\nweb[1:3\n"), "unbalanced bracket"),
    "bad port suffix": (_file("hosts.ini", "[web]\nweb1:99999\n"), "outside 1-65535"),
    "group_vars a list": (_with_vars("group_vars/web.yml", "- 1\n"), "group_vars/web.yml: a vars file must be"),
    "group_vars bad YAML": (_with_vars("group_vars/web.yml", "a: [\n"), "group_vars/web.yml"),
    "group_vars bad port": (_with_vars("group_vars/web.yml", "ansible_port: 99999\n"), "web.yml: ansible_port"),
    "group_vars bad settings": (
        _with_vars("group_vars/web.yml", "sshd_setup: {ca_key: []}\n"),
        "group_vars/web.yml: sshd_setup",
    ),
    "group_vars dir file bad": (_with_vars("group_vars/web/10.yml", b"a: \xff\n"), "group_vars/web/10.yml"),
    "host_vars bad user": (_with_vars("host_vars/web1.yml", "ansible_user: 'a b'\n"), "web1.yml: ansible_user"),
    "group priority not a number": (
        _file("inventory.yml", GOOD_YAML.replace("  vars:\n", "  vars:\n    ansible_group_priority: high\n")),
        "ansible_group_priority",
    ),
    "plugin configuration": (_file("aws_ec2.yml", "plugin: amazon.aws.aws_ec2\n"), "plugin configuration"),
    "TOML": (_file("hosts.toml", "[web]\n"), "TOML"),
    "script fails": (_script("echo boom >&2\nexit 3\n"), "exited with status 3: boom"),
    "script prints no JSON": (_script("echo '[web]'\n"), "not JSON"),
    "script prints a list": (_script("echo '[1, 2]'\n"), "must be an object of groups"),
    "script hostvars not an object": (_script('echo \'{"_meta": {"hostvars": []}}\'\n'), "_meta.hostvars"),
    "script hosts not a list": (_script('echo \'{"web": {"hosts": "a"}}\'\n'), "list of host names"),
    "script bad --host": (_script('[ "$1" = --list ] && echo \'{"web": ["a"]}\' || echo nope\n'), "--host a"),
    "script not UTF-8": (_script("printf '{\"w\\377\": []}'\n"), "not UTF-8"),
    "JSON listing group a number": (_file("inventory.json", '{"_meta": {"hostvars": {}}, "web": 3}'), "web"),
    "INI settings not YAML": (
        _file("hosts.ini", f"[all:vars]\nsshd_setup={{ca_keys: ['{CA_KEY}']\n[web]\nh1\n"),
        "invalid YAML",
    ),
    "limit typo": (_limit("wbe1"), "did you mean 'web1'"),
    "two output modes": (lambda tmp: [*_file("inventory.yml", GOOD_YAML)(tmp), "--list", "--graph"], "only one"),
    "unknown --host": (lambda tmp: [*_file("inventory.yml", GOOD_YAML)(tmp), "--host", "web"], "did you mean 'web1'"),
    "unknown --graph group": (lambda tmp: [*_file("inventory.yml", GOOD_YAML)(tmp), "--graph", "al"], "no group 'al'"),
    "limit file missing": (_limit("@/nonexistent"), "no such"),
    "limit subscript out of range": (_limit("all[5]"), "no index 5"),
    "limit bad regex": (_limit("~web("), "bad regular expression"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_odd_inventory_is_one_line_and_exit_2(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    make, problem = CASES[case]
    args = make(tmp_path)
    monkeypatch.setattr(sys, "argv", ["sshd-setup", "inventory", *args])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    out, err = capsys.readouterr()
    assert exited.value.code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sshd-setup: error: "), err
    assert problem in lines[0], lines[0]
    assert "Traceback" not in err and out == ""


def test_odd_input_through_the_installed_command(tmp_path: Path) -> None:
    """The same through a real process and apply itself: exit 2, one line, nothing else on stderr."""
    args = CASES["mapping used as a host key"][0](tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "sshd_setup", "apply", *args, "--dry-run"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "used as a key" in proc.stderr
