"""Hostile inventories on real container hosts: nothing written where it must not be, nothing shown.

Each case was seen: a ca_path of /etc/sudoers overwrote sudoers, a principals file overwrote a host key
or /etc/passwd, sshd_config: /etc/shadow printed shadow lines. Now the paths exit 2 before any host is
contacted, or, when only the host shows the problem (a foreign file, a symlink), they are error findings
and the host stays byte-identical.
"""

from __future__ import annotations

import re
import shlex
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_test_hosts
from tests.fleetrun import etc_ssh_state, sha256, sshd_setup, write_inventory
from tests.testhosts import Fleet, Host, HostSpec
from tests.testhosts.certs import make_ca, make_user_key, try_login

pytestmark = [pytest.mark.integration, pytest.mark.destructive]

SYSTEM_FILES = ("/etc/sudoers", "/etc/passwd", "/etc/shadow", "/etc/ssh/ssh_host_ed25519_key")


@pytest.fixture(scope="module")
def hosts() -> Iterator[Fleet]:
    """hp1 for refusals (every test leaves it as it found it), hp2 for the writes that go through."""
    require_test_hosts()
    with Fleet.up([HostSpec("hp1"), HostSpec("hp2", flavour="rhel")]) as fleet:
        yield fleet


@pytest.fixture(scope="module")
def ca_line(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_ca(tmp_path_factory.mktemp("ca")).public_key


def _state(host: Host) -> dict[str, str]:
    """Hashes of /etc/ssh and the system files a hostile path aimed at, with their modes."""
    state = etc_ssh_state(host)
    quoted = " ".join(shlex.quote(p) for p in SYSTEM_FILES)
    for line in host.run(f"stat -c '%n %a %U' {quoted}").stdout.splitlines():
        name, rest = line.split(" ", 1)
        state[name] = f"{rest} {sha256(host.read_file(name))}"
    state["users"] = sha256(host.read_file("/etc/passwd"))
    state["principals dir"] = host.run("test -e /etc/ssh/principals && echo yes || echo no").stdout.strip()
    return state


def _secret_lines(host: Host) -> list[str]:
    """The password fields of /etc/shadow: none may ever appear in our output."""
    fields = [line.split(":")[1] for line in host.read_file("/etc/shadow").decode().splitlines() if ":" in line]
    return [f for f in fields if len(f) > 2]


HOSTILE: dict[str, tuple[dict[str, Any], str]] = {
    "ca_path sudoers": ({"ca_path": "/etc/sudoers"}, "ca_path"),
    "principals file host key": (
        {"principals": [{"user": "vm", "principals": ["jdoe"], "file": "/etc/ssh/ssh_host_ed25519_key"}]},
        "principals[0].file",
    ),
    "principals file passwd": (
        {"principals": [{"user": "vm", "principals": ["jdoe"], "file": "/etc/passwd"}]},
        "principals[0].file",
    ),
    "sshd_config shadow": ({"sshd_config": "/etc/shadow"}, "sshd_config"),
    "ca_path is sshd_config": ({"ca_path": "/etc/ssh/sshd_config"}, "ca_path"),
    "ca_path under proc": ({"ca_path": "/proc/self/environ"}, "ca_path"),
}


def test_hostile_inventory_paths_exit_2_before_any_host_is_contacted(
    hosts: Fleet, ca_line: str, tmp_path: Path
) -> None:
    host = hosts.host("hp1")
    before = _state(host)
    secrets = _secret_lines(host)
    cursor = host.journal_cursor()
    with socket.create_server(("127.0.0.1", 0)) as canary:  # a host in the inventory that counts dials
        canary.setblocking(False)
        canary_host = {"ansible_host": "127.0.0.1", "ansible_port": canary.getsockname()[1]}
        for name, (extra, key) in HOSTILE.items():
            settings = {"ca_keys": [ca_line], "create_users": True, **extra}
            extra_hosts = {"canary": canary_host}
            inventory = write_inventory(hosts, tmp_path / "inventory.yml", settings, extra_hosts=extra_hosts)
            run = sshd_setup("apply", "-i", inventory, "--yes", "--json")
            assert run.returncode == 2, (name, run.stdout, run.stderr)
            assert run.stdout == "" and len(run.stderr.strip().splitlines()) == 1, (name, run.stderr)
            assert f"all.vars.sshd_setup.{key}:" in run.stderr and str(inventory) in run.stderr, (name, run.stderr)
            assert "Traceback" not in run.stderr and not any(s in run.stderr for s in secrets), name
        with pytest.raises(BlockingIOError):
            canary.accept()  # nobody dialled it
    assert "Accepted" not in host.journal_since(cursor), "a hostile inventory logged in to the host"
    assert _state(host) == before


def test_foreign_files_at_our_paths_are_error_findings_and_the_host_stays_byte_identical(
    hosts: Fleet, ca_line: str, tmp_path: Path
) -> None:
    host = hosts.host("hp1")
    host.write_file("/etc/ssh/ca.pub", b"PRIVATE-NOTES: not a key list\n")
    host.run("mkdir -p /etc/ssh/principals")
    host.write_file("/etc/ssh/principals/vm", b"jdoe from a note, not a principal\n")
    try:
        before = _state(host)
        settings = {"ca_keys": [ca_line], "create_users": True, "principals": [{"user": "vm", "principals": ["jdoe"]}]}
        inventory = write_inventory(hosts, tmp_path / "inventory.yml", settings)
        run = sshd_setup(
            "apply", "-i", inventory, "--limit", "hp1", "--yes", "--json", "--allow", "MANAGED-FILE-FOREIGN"
        )
        assert run.returncode == 1, run.stdout + run.stderr
        result = run.host("hp1")
        assert result["status"] == "blocked", result
        foreign = {f["path"] for f in result["findings"] if f["code"] == "MANAGED-FILE-FOREIGN"}
        assert foreign == {"/etc/ssh/ca.pub", "/etc/ssh/principals/vm"}, result["findings"]
        assert result["files"] == [] and result["users_created"] == []
        assert "PRIVATE-NOTES" not in run.stdout and "from a note" not in run.stdout
        assert _state(host) == before
    finally:
        host.run("rm -rf /etc/ssh/ca.pub /etc/ssh/principals")


def test_a_symlink_to_shadow_is_never_followed_nor_shown(hosts: Fleet, ca_line: str, tmp_path: Path) -> None:
    host = hosts.host("hp1")
    host.run("ln -s /etc/shadow /etc/ssh/ca.pub")
    try:
        before = _state(host)
        secrets = _secret_lines(host)
        inventory = write_inventory(hosts, tmp_path / "inventory.yml", {"ca_keys": [ca_line]})
        for args in (("--dry-run",), ("--yes", "--json")):
            run = sshd_setup("apply", "-i", inventory, "--limit", "hp1", *args)
            assert run.returncode == 1, run.stdout + run.stderr
            assert "MANAGED-PATH-REFUSED" in run.stdout, run.stdout
            assert not any(s in run.stdout + run.stderr for s in secrets), "shadow content was printed"
            assert "root:" not in run.stdout
        result = run.host("hp1")
        assert result["status"] == "blocked" and result["files"] == [], result
        assert "/etc/ssh/ca.pub is a symlink to /etc/shadow, which is a system file" in result["reason"], result
        assert _state(host) == before
        assert host.run("readlink /etc/ssh/ca.pub").stdout.strip() == "/etc/shadow"
    finally:
        host.run("rm -f /etc/ssh/ca.pub")


def test_failed_validation_creates_no_user_and_no_directory(hosts: Fleet, ca_line: str, tmp_path: Path) -> None:
    host = hosts.host("hp1")
    host.run("echo 'ThisIsNotAKeyword yes' > /etc/ssh/sshd_config.d/99-broken.conf")
    try:
        before = _state(host)
        settings = {
            "ca_keys": [ca_line],
            "create_users": True,
            "principals": [{"user": "vmuser", "principals": ["jdoe"]}, {"user": "ops", "any_principal": True}],
        }
        inventory = write_inventory(hosts, tmp_path / "inventory.yml", settings)
        allow = ("--allow", "PENDING-FOREIGN-CHANGE")  # the broken drop-in is not loaded: allowed, to reach sshd -t
        run = sshd_setup("apply", "-i", inventory, "--limit", "hp1", "--yes", "--json", *allow)
        assert run.returncode == 1
        result = run.host("hp1")
        assert result["status"] == "failed" and "sshd -t refused" in result["reason"], result
        assert "nothing changed" in result["reason"] and result["users_created"] == []
        assert host.run("getent passwd vmuser ops", check=False).returncode != 0, "a user was created"
        assert host.run("test -e /etc/ssh/principals", check=False).returncode != 0, "principals dir was created"
        assert _state(host) == before
    finally:
        host.run("rm -f /etc/ssh/sshd_config.d/99-broken.conf")


def test_symlinked_sshd_config_is_written_through_and_stays_a_symlink(
    hosts: Fleet, ca_line: str, tmp_path: Path
) -> None:
    host = hosts.host("hp2")
    host.run("mv /etc/ssh/sshd_config /etc/ssh/sshd_config.site && ln -s sshd_config.site /etc/ssh/sshd_config")
    host.run("chmod 0600 /etc/ssh/sshd_config.site")  # its own mode: kept (core.filemodes.final_mode)
    original = host.read_file("/etc/ssh/sshd_config.site")
    ca = make_ca(tmp_path / "ca")
    settings = {
        "ca_keys": [ca.public_key],
        "create_users": True,
        "principals": [{"user": "johndoe", "principal": "jdoe"}],
    }
    inventory = write_inventory(hosts, tmp_path / "inventory.yml", settings)
    run = sshd_setup("apply", "-i", inventory, "--limit", "hp2", "--yes", "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.host("hp2")["status"] == "changed" and "new login verified" in run.host("hp2")["reason"]
    assert host.run("readlink /etc/ssh/sshd_config").stdout.strip() == "sshd_config.site"
    assert host.run("test -f /etc/ssh/sshd_config.site -a ! -L /etc/ssh/sshd_config.site", check=False).returncode == 0
    assert b"TrustedUserCAKeys /etc/ssh/ca.pub" in host.read_file("/etc/ssh/sshd_config.site")
    assert host.run("stat -c '%a %U:%G' /etc/ssh/sshd_config.site").stdout.strip() == "600 root:root"
    assert host.run("ls -a /etc/ssh | grep -c sshd-setup-new", check=False).stdout.strip() == "0"
    key = make_user_key(tmp_path / "k", "person")
    assert try_login(host, "johndoe", key, ca.sign(key, ["jdoe"])).success
    again = sshd_setup("apply", "-i", inventory, "--limit", "hp2", "--yes", "--json")
    assert again.returncode == 0 and again.host("hp2")["status"] == "unchanged", again.host("hp2")
    undo = sshd_setup("rollback", "-i", inventory, "--limit", "hp2", "--yes", "--json")
    assert undo.returncode == 0 and undo.host("hp2")["status"] == "changed", undo.stdout + undo.stderr
    assert host.run("readlink /etc/ssh/sshd_config").stdout.strip() == "sshd_config.site", "rollback replaced the link"
    assert host.read_file("/etc/ssh/sshd_config.site") == original


def test_a_removed_mapping_removes_the_principals_file_we_wrote_only(
    hosts: Fleet, ca_line: str, tmp_path: Path
) -> None:
    host = hosts.host("hp2")
    lists = [
        {"user": "vmuser", "principals": ["jdoe"]},
        {"user": "ops", "principals": ["bwayne"], "file": "/etc/ssh/ops-list.txt"},
        {"user": "dba", "principals": ["robin"]},
    ]
    settings = {"ca_keys": [ca_line], "create_users": True, "principals": lists}
    first = sshd_setup("apply", "-i", write_inventory(hosts, tmp_path / "i1.yml", settings), "--limit", "hp2", "--yes")
    assert first.returncode == 0, first.stdout + first.stderr
    assert host.run("test -f /etc/ssh/ops-list.txt -a -f /etc/ssh/principals/dba", check=False).returncode == 0
    # dba's file is edited by hand since (our header gone): it is no longer ours to remove.
    host.run("sed -i 1d /etc/ssh/principals/dba")
    hand_edited = host.read_file("/etc/ssh/principals/dba")

    settings["principals"] = lists[:1]
    run = sshd_setup(
        "apply", "-i", write_inventory(hosts, tmp_path / "i2.yml", settings), "--limit", "hp2", "--yes", "--json"
    )

    assert run.returncode == 0, run.stdout + run.stderr
    result = run.host("hp2")
    assert result["status"] == "changed" and "remove 1 unmapped principals file" in result["reason"], result
    assert host.run("test -e /etc/ssh/ops-list.txt", check=False).returncode != 0, "our file was left behind"
    assert host.read_file("/etc/ssh/principals/dba") == hand_edited, "a file we did not write was touched"
    assert host.run("test -f /etc/ssh/principals/vmuser", check=False).returncode == 0
    assert b"ops-list" not in host.read_file("/etc/ssh/sshd_config")
    backup = result["backup"]  # the run's whole-state backup holds the removed file with its hash
    manifest = host.read_file(f"/var/backups/sshd-setup/runs/{backup}/manifest").decode()
    assert re.search(r"^existed [0-9a-f]{64} /etc/ssh/ops-list.txt$", manifest, re.M), manifest


def test_a_principals_directory_linked_to_sudoers_d_is_refused(hosts: Fleet, ca_line: str, tmp_path: Path) -> None:
    host = hosts.host("hp1")
    host.run("ln -s /etc/sudoers.d /etc/ssh/principals")
    try:
        before = _state(host) | {"sudoers.d": host.run("ls -la /etc/sudoers.d").stdout}
        settings = {"ca_keys": [ca_line], "create_users": True, "principals": [{"user": "vm", "principals": ["jdoe"]}]}
        inventory = write_inventory(hosts, tmp_path / "inventory.yml", settings)
        run = sshd_setup("apply", "-i", inventory, "--limit", "hp1", "--yes", "--json")
        assert run.returncode == 1, run.stdout + run.stderr
        result = run.host("hp1")
        assert result["status"] == "blocked" and "which is under /etc/sudoers.d" in result["reason"], result
        assert _state(host) | {"sudoers.d": host.run("ls -la /etc/sudoers.d").stdout} == before
        assert host.run("getent passwd vm", check=False).returncode != 0
    finally:
        host.run("rm -f /etc/ssh/principals")
