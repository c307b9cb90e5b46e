"""The test-host harness itself: real systemd + sshd hosts boot, reload, tear down without leftovers.

The teardown checks below read /proc, /sys and mountinfo directly instead of trusting the harness.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.testhosts import Fleet, Host, HostSpec, state_dir
from tests.testhosts.certs import make_ca, make_user_key, try_login

pytestmark = pytest.mark.integration

MIXED = [
    HostSpec("deb1"),
    HostSpec("rhel1", flavour="rhel"),
    HostSpec("tri1", suite="trixie"),
    HostSpec("sock1", socket_activated=True),
]
SERVICE_HOSTS = ["deb1", "rhel1", "tri1"]  # sshd runs as a service from boot
OPENSSH = {"deb1": "OpenSSH_9.2", "rhel1": "OpenSSH_9.2", "tri1": "OpenSSH_10.0"}


@pytest.fixture(scope="module")
def mixed() -> Iterator[Fleet]:
    with Fleet.up(MIXED) as fleet:
        yield fleet


def banner(address: str) -> str:
    with socket.create_connection((address, 22), timeout=5) as s:
        s.settimeout(5)
        data = b""
        while b"\n" not in data:
            chunk = s.recv(256)
            if not chunk:
                break
            data += chunk
    return data.decode(errors="replace").strip()


@pytest.mark.parametrize("name", SERVICE_HOSTS)
def test_sshd_answers_on_22_with_the_suites_openssh(mixed: Fleet, name: str) -> None:
    host = mixed.host(name)
    assert banner(host.address).startswith(f"SSH-2.0-{OPENSSH[name]}")
    # A fresh (not multiplexed) login with strict host key checking against the fleet's known_hosts.
    result = host.run("hostname; cat /etc/machine-id", multiplex=False)
    hostname, machine_id = result.stdout.split()
    assert hostname == name
    assert len(machine_id) == 32


@pytest.mark.parametrize("name", SERVICE_HOSTS)
def test_reload_of_the_right_unit_reaches_sshd(mixed: Fleet, name: str) -> None:
    host = mixed.host(name)
    assert host.unit == ("sshd" if name == "rhel1" else "ssh")
    before = host.sighup_count()
    cursor = host.journal_cursor()
    host.run(f"systemctl reload {host.unit}")
    deadline = time.monotonic() + 10
    while host.sighup_count() != before + 1:
        assert time.monotonic() < deadline, f"sshd logged no SIGHUP after reload on {name}"
        time.sleep(0.1)
    assert "Received SIGHUP" in host.journal_since(cursor)
    assert host.run(f"systemctl is-active {host.unit}").stdout.strip() == "active"
    host.wait_for_ssh_port()
    assert host.run("echo ok", multiplex=False).stdout == "ok\n"


def test_rhel_flavour_has_no_ssh_unit(mixed: Fleet) -> None:
    rhel = mixed.host("rhel1")
    result = rhel.run("systemctl reload ssh", check=False)
    assert result.returncode == 5, result
    assert "Unit ssh.service not found" in result.stderr
    assert 'ID="rhel"' in rhel.read_file("/etc/os-release").decode()
    assert rhel.run("test -e /etc/redhat-release && ! test -e /etc/debian_version", check=False).returncode == 0
    # The Debian host is unchanged: `ssh` is its unit and sshd is only an alias.
    assert mixed.host("deb1").run("systemctl reload ssh", check=False).returncode == 0


def test_socket_activated_host_serves_each_connection_without_ssh_service(mixed: Fleet) -> None:
    sock = mixed.host("sock1")
    # Looked at through nsenter, not SSH: nothing may have connected to port 22 yet.
    state = sock.run_nsenter("systemctl is-active ssh.socket ssh.service", check=False).stdout.split()
    assert state == ["active", "inactive"]
    reload = sock.run_nsenter("systemctl reload ssh", check=False)
    assert reload.returncode != 0, "reload of an inactive ssh.service must fail, as on Ubuntu"
    assert banner(sock.address).startswith("SSH-2.0-OpenSSH_9.2")
    # Each connection gets its own `sshd -i` (ssh@.service); ssh.service stays inactive.
    for _ in range(3):  # ssh's own failure (255: a per-connection sshd slow to start under load) is retried
        state_now = sock.run("systemctl is-active ssh.service", check=False, multiplex=False)
        if state_now.returncode != 255:
            break
    assert (state_now.returncode, state_now.stdout.strip()) == (3, "inactive"), state_now.stderr
    assert "ssh@" in sock.run("systemctl list-units --no-legend 'ssh@*'", multiplex=False).stdout


def test_hosts_are_isolated_and_have_their_own_host_keys(mixed: Fleet) -> None:
    lines = mixed.known_hosts_path.read_text().splitlines()
    keys = [line.split()[2] for line in lines]
    assert len(lines) == 3 * len(MIXED)  # rsa, ecdsa, ed25519 for each host
    assert len(set(keys)) == len(keys)
    for name in SERVICE_HOSTS:
        routes = mixed.host(name).run("ip -4 route show; ip -6 route show").stdout
        assert "default" not in routes, routes


def _starttime(pid: int | str) -> str | None:
    """Field 22 of /proc/PID/stat, or None if PID is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return None if fields[0] in ("Z", "X") else fields[19]


def _processes_in(cgroups: list[Path]) -> dict[int, str]:
    """Every process in these cgroup trees, with its start time (to tell a reused PID apart)."""
    found = {}
    for cg in cgroups:
        for procs in cg.rglob("cgroup.procs"):
            for pid in procs.read_text().split():
                start = _starttime(pid)
                if start is not None:
                    found[int(pid)] = start
    return found


def test_down_leaves_no_process_mount_bridge_or_cgroup(mixed: Fleet) -> None:
    # Last test of the module: it stops the module's fleet itself, then looks for anything left.
    workdir = str(mixed.workdir)
    cm_dir = f"{state_dir()}/cm{mixed.id}/"
    mixed.host("deb1").run("true")  # make sure a ControlMaster runs, to see it stopped too
    procs = _processes_in(mixed.cgroup_paths)
    # Each container has its own cgroup, holding its nspawn, systemd, journald, sshd...
    assert {h.pid for h in mixed.hosts} <= set(procs)
    assert len(procs) > 4 * len(MIXED)
    for root in mixed.cgroup_paths:
        assert sorted(p.name for p in root.iterdir() if p.is_dir()) == sorted(
            f"t{mixed.id}h{i + 2}" for i in range(len(MIXED))
        )

    started = time.monotonic()
    mixed.down()
    took = time.monotonic() - started

    assert [p for p, start in procs.items() if _starttime(p) == start] == [], "processes survived"
    assert f" {workdir}/" not in Path("/proc/self/mountinfo").read_text()
    links = os.listdir("/sys/class/net")
    assert mixed.bridge not in links
    assert [link for link in links if link.startswith(f"vb-t{mixed.id}h")] == []
    assert [cg for cg in mixed.cgroup_paths if cg.exists()] == []
    leftovers = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if workdir in cmd or cm_dir in cmd:
            leftovers.append(cmd)
    assert leftovers == [], "processes of the fleet (e.g. ssh ControlMasters) survived"
    assert not Path(workdir).exists()
    assert not (state_dir() / f"fleet-{mixed.id}.json").exists()
    assert took < 30


def _login_setup(host: Host, ca_public_key: str) -> None:
    """Hand-written configuration (not the tool's): principals for johndoe come from a command."""
    host.run("useradd --create-home johndoe")
    host.write_file("/etc/ssh/ca.pub", f"{ca_public_key}\n".encode())
    config = host.read_file("/etc/ssh/sshd_config").decode()
    config = (
        "TrustedUserCAKeys /etc/ssh/ca.pub\n"
        + config
        + "\nMatch User johndoe\n"
        + "    AuthorizedPrincipalsCommand /bin/echo 'jdoe'\n"
        + "    AuthorizedPrincipalsCommandUser nobody\n"
    )
    host.write_file("/etc/ssh/sshd_config", config.encode())
    host.run("sshd -t")
    before = host.sighup_count()
    host.run(f"systemctl reload {host.unit}")
    deadline = time.monotonic() + 10
    while host.sighup_count() == before:
        assert time.monotonic() < deadline, "sshd was not reloaded"
        time.sleep(0.1)
    host.wait_for_ssh_port()


@pytest.mark.destructive
def test_certificate_login_helpers_on_a_real_host(fresh_hosts, tmp_path: Path) -> None:
    host = fresh_hosts([HostSpec("cert1")]).host("cert1")
    ca = make_ca(tmp_path / "ca")
    _login_setup(host, ca.public_key)
    key = make_user_key(tmp_path, "user")

    jdoe = try_login(host, "johndoe", key, ca.sign(key, ["jdoe"], validity="+10m"), command="id -un")
    assert jdoe.success, jdoe
    assert jdoe.stdout == "johndoe\n"
    assert "Accepted publickey for johndoe" in jdoe.journal
    assert "-CERT" in jdoe.journal

    bob = try_login(host, "johndoe", key, ca.sign(key, ["bob"]))
    assert not bob.success, bob
    assert bob.reason is not None and "principal" in bob.reason, bob

    plain = try_login(host, "johndoe", key)  # the same key without its certificate
    assert not plain.success, plain

    rogue = make_ca(tmp_path / "rogue")
    forged = try_login(host, "johndoe", key, rogue.sign(key, ["jdoe"], name="forged"))
    assert not forged.success, forged


def test_fleet_files_reach_the_hosts_with_plain_ssh(fresh_hosts) -> None:
    fleet = fresh_hosts(["a1", "a2"])
    inventory = fleet.inventory_path.read_text()
    for host in fleet.hosts:
        assert f"ansible_host: {host.address}" in inventory
        out = subprocess.run(
            ["ssh", "-F", str(fleet.ssh_config_path), host.name, "hostname"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert (out.returncode, out.stdout) == (0, f"{host.name}\n"), out.stderr
