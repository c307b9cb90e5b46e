"""Both gateway flows and a CA rotation on real container hosts, proved with real certificate logins.

- ``flow: access-infrastructure`` on a host whose sshd listens only on 2222 (``sshd_setup.port``), with
  no principal mappings: sshd's default, the certificate must name the Unix user;
- ``flow: access-infrastructure`` with a mapping: the principal is used as written (an e-mail stays one);
- ``flow: ssh-proxy`` (the default) beside them: the e-mail prefix, port 22;
- CA rotation: old key, then old + new during the change-over, then only the new key.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import yaml

from tests.fleetrun import sshd_setup, write_inventory
from tests.testhosts import Fleet, Host, HostSpec
from tests.testhosts.certs import make_ca, make_user_key, try_login

pytestmark = [pytest.mark.integration, pytest.mark.destructive]

ALT_PORT = 2222


def move_sshd_to(fleet: Fleet, host: Host, port: int) -> None:
    """sshd listens on PORT only; known_hosts learns [addr]:PORT. The harness keeps its open connection."""
    host.run("true")  # the multiplexed harness connection stays up across the reload
    host.run(f"printf 'Port {port}\\n' > /etc/ssh/sshd_config.d/10-port.conf && systemctl reload ssh")
    deadline = time.monotonic() + 15
    while True:
        try:
            with socket.create_connection((host.address, port), timeout=1) as conn:
                if conn.recv(4).startswith(b"SSH-"):
                    break
        except OSError:
            pass
        assert time.monotonic() < deadline, f"{host.name}: sshd does not answer on {port}"
        time.sleep(0.05)
    known = fleet.known_hosts_path
    lines = [line for line in known.read_text().splitlines() if line.split(" ", 1)[0].split(",")[0] == host.address]
    extra = "".join(f"[{host.address}]:{port} {line.split(' ', 1)[1]}\n" for line in lines)
    known.write_text(known.read_text() + extra)


def with_port(inventory: Path, host: str, port: int) -> Path:
    data = yaml.safe_load(inventory.read_text())
    data["all"]["hosts"][host]["ansible_port"] = port
    inventory.write_text(yaml.safe_dump(data, sort_keys=False))
    return inventory


def test_both_flows_log_in_with_certificates_and_verify(fresh_hosts, tmp_path: Path) -> None:
    fleet = fresh_hosts([HostSpec("ai1"), HostSpec("ai2"), HostSpec("px1")])
    ai1, ai2, px1 = fleet.host("ai1"), fleet.host("ai2"), fleet.host("px1")
    move_sshd_to(fleet, ai1, ALT_PORT)
    ai1.run("useradd -m alice")
    ca = make_ca(tmp_path)
    base = {"ca_keys": [ca.public_key], "create_users": True}
    per_host = {
        "ai1": {"flow": "access-infrastructure", "port": ALT_PORT},  # no mappings
        "ai2": {"flow": "access-infrastructure", "principals": [{"user": "ops", "principal": "jdoe@example.com"}]},
        "px1": {"principals": [{"user": "johndoe", "principal": "jdoe@example.com"}]},
    }
    inventory = with_port(write_inventory(fleet, tmp_path / "inventory.yml", base, per_host), "ai1", ALT_PORT)

    # Judged as the SSH proxy, ai1's port 2222 blocks it; as Access for Infrastructure it is the right port.
    proxy_inventory = with_port(write_inventory(fleet, tmp_path / "proxy.yml", base), "ai1", ALT_PORT)
    as_proxy = sshd_setup("check", "-i", proxy_inventory, "--limit", "ai1", "--json")
    assert as_proxy.returncode == 1, as_proxy.stdout + as_proxy.stderr
    assert "NO-PORT-22" in {f["code"] for f in as_proxy.host("ai1")["findings"]}

    check = sshd_setup("check", "-i", inventory, "--json")
    assert check.returncode == 0, check.stdout + check.stderr
    ai1_codes = {f["code"]: f["severity"] for f in check.host("ai1")["findings"]}
    assert ai1_codes.get("PRINCIPAL-IS-USERNAME") == "info", ai1_codes
    assert not any("PORT" in code for code in ai1_codes), ai1_codes
    assert "PRINCIPAL-IS-USERNAME" not in {f["code"] for f in check.host("ai2")["findings"]}

    applied = sshd_setup("apply", "-i", inventory, "--yes", "--json")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert {applied.host(h.name)["status"] for h in fleet.hosts} == {"changed"}

    key = make_user_key(tmp_path / "keys", "person")
    cert = {p: ca.sign(key, [p]) for p in ("alice", "bob", "jdoe", "jdoe@example.com")}
    expectations = [
        (ai1, ALT_PORT, "alice", "alice", True),  # no mapping: the certificate names the Unix user
        (ai1, ALT_PORT, "alice", "bob", False),
        (ai2, 22, "ops", "jdoe@example.com", True),  # access-infrastructure: the principal as written
        (ai2, 22, "ops", "jdoe", False),
        (px1, 22, "johndoe", "jdoe", True),  # ssh-proxy: the e-mail prefix
        (px1, 22, "johndoe", "jdoe@example.com", False),
    ]
    for host, port, user, principal, allowed in expectations:
        login = try_login(host, user, key, cert[principal], port=port)
        assert login.success is allowed, f"{host.name}:{port} {principal} as {user}: {login}"

    verified = sshd_setup("verify", "-i", inventory, "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_ca_rotation_two_keys_during_the_change_over_then_only_the_new(fresh_hosts, tmp_path: Path) -> None:
    fleet = fresh_hosts([HostSpec("rot1")])
    host = fleet.hosts[0]
    old, new = make_ca(tmp_path / "old", "old-ca"), make_ca(tmp_path / "new", "new-ca")
    key = make_user_key(tmp_path / "keys", "person")
    under_old = old.sign(key, ["jdoe"], name="old")
    under_new = new.sign(key, ["jdoe"], name="new")
    mapping = [{"user": "johndoe", "principal": "jdoe@example.com"}]
    inventory = tmp_path / "inventory.yml"

    def apply(keys: list[str]) -> dict[str, bool]:
        write_inventory(fleet, inventory, {"ca_keys": keys, "principals": mapping, "create_users": True})
        run = sshd_setup("apply", "-i", inventory, "--yes", "--json")
        assert run.returncode == 0, run.stdout + run.stderr
        assert run.host(host.name)["status"] == "changed", run.host(host.name)
        return {
            "old": try_login(host, "johndoe", key, under_old).success,
            "new": try_login(host, "johndoe", key, under_new).success,
        }

    assert apply([old.public_key]) == {"old": True, "new": False}
    assert apply([old.public_key, new.public_key]) == {"old": True, "new": True}  # change-over
    assert apply([new.public_key]) == {"old": False, "new": True}  # old CA removed
