"""Real service layouts (issue 15): RHEL's sshd.socket, Debian's own ssh.socket (Accept=no), on real hosts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.fleetrun import sshd_setup, write_inventory
from tests.testhosts import Host, HostSpec
from tests.testhosts.certs import make_ca, make_user_key, try_login
from tests.testhosts.fleet import _banner_ok, wait_banner

pytestmark = [pytest.mark.integration, pytest.mark.destructive]

MAPPINGS = [{"user": "johndoe", "principal": "jdoe@example.com"}]


def settings(ca_line: str, mappings: list[dict[str, object]] | None = None) -> dict[str, object]:
    return {"ca_keys": [ca_line], "principals": mappings or MAPPINGS, "create_users": True}


def files_state(host: Host) -> dict[str, str]:
    """sha256 and mtime of every file under /etc/ssh, read without SSH (the host may not listen on 22)."""
    out = host.run_nsenter("find /etc/ssh -type f -printf '%p %T@ ' -exec sha256sum {} \\; | sort").stdout
    return {line.split()[0]: " ".join(line.split()[1:3]) for line in out.splitlines() if line.strip()}


def units(host: Host, *names: str) -> list[str]:
    return host.run_nsenter(f"systemctl is-active {' '.join(names)}", check=False).stdout.split()


def test_rhel_sshd_socket_is_recognised_blocks_a_2222_socket_and_is_never_stopped(fresh_hosts, tmp_path: Path) -> None:
    fleet = fresh_hosts([HostSpec(name, flavour="rhel", socket_activated=True) for name in ("rsock1", "rsock2")])
    healthy, moved = fleet.host("rsock1"), fleet.host("rsock2")
    moved.run_nsenter(
        "mkdir -p /etc/systemd/system/sshd.socket.d && printf '[Socket]\\nListenStream=\\nListenStream=2222\\n'"
        " > /etc/systemd/system/sshd.socket.d/port.conf && systemctl daemon-reload && systemctl restart sshd.socket"
    )
    assert wait_banner(moved.address, 2222) and not _banner_ok(moved.address, 22)
    known = fleet.known_hosts_path.read_text()
    fleet.known_hosts_path.write_text(
        known
        + "".join(
            f"[{moved.address}]:2222 {line.split(' ', 1)[1]}\n"
            for line in known.splitlines()
            if line.startswith(f"{moved.address},")
        )
    )
    before = files_state(healthy), files_state(moved)
    ca = make_ca(tmp_path)
    on_2222 = {"rsock2": {"ansible_host": moved.address, "ansible_port": 2222}}
    inventory = write_inventory(fleet, tmp_path / "inventory.yml", settings(ca.public_key), extra_hosts=on_2222)

    run = sshd_setup("apply", "-i", inventory, "--yes", "--json")

    assert run.returncode == 1, run.stdout + run.stderr
    blocked = run.host("rsock2")
    assert blocked["status"] == "blocked" and "SOCKET-NO-PORT-22" in blocked["reason"], blocked
    assert "sshd.socket listens on [::]:2222" in blocked["reason"]
    assert files_state(moved) == before[1]
    assert wait_banner(moved.address, 2222) and units(moved, "sshd.socket") == ["active"]
    converged = run.host("rsock1")
    assert converged["status"] == "changed", converged
    assert "sshd.socket is listening and runs one sshd per connection" in converged["reason"]
    assert units(healthy, "sshd.socket", "sshd.service") == ["active", "inactive"]
    key = make_user_key(tmp_path / "k", "person")
    assert try_login(healthy, "johndoe", key, ca.sign(key, ["jdoe"])).success
    verified = sshd_setup("verify", "-i", inventory, "--limit", "rsock1", "--json")
    assert verified.returncode == 0, verified.stdout[-3000:]
    active = next(c for c in verified.host("rsock1")["checks"] if c["check"] == "sshd_active")
    assert active["detail"] == "sshd.socket is active", active

    # A failing reload on a socket host: the rollback brings the socket back, never sshd.service (whose
    # start would stop sshd.socket through Conflicts=).
    after_apply = files_state(healthy)
    more = [*MAPPINGS, {"user": "ops", "any_principal": True}]
    inventory = write_inventory(fleet, tmp_path / "inventory2.yml", settings(ca.public_key, more), extra_hosts=on_2222)
    hook = {"SSHD_SETUP_TEST_HOOK": "fail-reload"}
    failed = sshd_setup("apply", "-i", inventory, "--limit", "rsock1", "--yes", "--json", env=hook)
    assert failed.returncode == 1
    result = failed.host("rsock1")
    assert result["status"] == "failed-rolled-back" and "sshd is up again" in result["reason"], result
    assert units(healthy, "sshd.socket", "sshd.service") == ["active", "inactive"]
    assert wait_banner(healthy.address, 22)
    assert {p: v.split()[1] for p, v in files_state(healthy).items()} == {
        p: v.split()[1] for p, v in after_apply.items()
    }
    assert before[0] != after_apply


def test_debian_accept_no_socket_converges_keeps_sessions_and_then_is_unchanged(fresh_hosts, tmp_path: Path) -> None:
    fleet = fresh_hosts(
        [
            HostSpec("dsock1", socket_activated=True, socket_style="service"),
            HostSpec("dsock2", suite="trixie", socket_activated=True, socket_style="service"),
        ]
    )
    ca = make_ca(tmp_path)
    inventory = write_inventory(fleet, tmp_path / "inventory.yml", settings(ca.public_key))
    sessions = [
        subprocess.Popen(
            [*h.ssh_argv(multiplex=False), "--", "sleep 8; echo session-alive"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for h in fleet.hosts
    ]
    for host in fleet.hosts:  # the sessions above started ssh.service through the socket
        host.run("for i in $(seq 50); do systemctl is-active --quiet ssh.service && exit 0; sleep 0.1; done; exit 1")

    first = sshd_setup("apply", "-i", inventory, "--yes", "--json")

    assert first.returncode == 0, first.stdout + first.stderr
    key = make_user_key(tmp_path / "k", "person")
    for host, session in zip(fleet.hosts, sessions, strict=True):
        result = first.host(host.name)
        assert result["status"] == "changed" and "new login verified" in result["reason"], result
        assert "ssh.service is restarted (systemd keeps the socket; open sessions survive" in result["reason"]
        assert units(host, "ssh.socket", "ssh.service") == ["active", "active"]
        assert try_login(host, "johndoe", key, ca.sign(key, ["jdoe"], name=host.name)).success
        out, _ = session.communicate(timeout=30)
        assert "session-alive" in out, f"{host.name}: the open session did not survive: {out}"
    second = sshd_setup("apply", "-i", inventory, "--yes", "--json")
    assert second.returncode == 0, second.stdout + second.stderr
    for host in fleet.hosts:
        assert second.host(host.name)["status"] == "unchanged", second.host(host.name)
    verified = sshd_setup("verify", "-i", inventory, "--json")
    assert verified.returncode == 0, verified.stdout[-3000:]
