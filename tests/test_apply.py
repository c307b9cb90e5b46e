"""`sshd-setup apply` on real container hosts: real sshd, real systemd reloads, real certificate logins."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fleetrun import etc_ssh_state, sshd_setup, write_inventory
from tests.testhosts import HostSpec
from tests.testhosts.certs import make_ca, make_user_key, try_login

pytestmark = [pytest.mark.integration, pytest.mark.destructive]

MAPPINGS = [
    {"user": "johndoe", "principal": "jdoe@example.com"},
    {"user": "vmuser", "principals": ["jdoe", "bwayne", "robin"], "file": "/etc/ssh/vmusers-list.txt"},
    {"user": "ops", "any_principal": True},
]


def settings(ca_line: str, **extra: object) -> dict[str, object]:
    return {"ca_keys": [ca_line], "principals": MAPPINGS, "create_users": True, **extra}


def test_dry_run_prints_the_diff_and_changes_nothing(fresh_hosts, tmp_path: Path) -> None:
    fleet = fresh_hosts([HostSpec("dry1"), HostSpec("dry2", flavour="rhel")])
    ca = make_ca(tmp_path)
    inventory = write_inventory(fleet, tmp_path / "inventory.yml", settings(ca.public_key))
    before = {h.name: etc_ssh_state(h) for h in fleet.hosts}
    hups = {h.name: h.sighup_count() for h in fleet.hosts}

    run = sshd_setup("apply", "--yes", "-i", inventory, "--dry-run")

    assert run.returncode == 0, run.stderr
    assert "+TrustedUserCAKeys /etc/ssh/ca.pub" in run.stdout
    assert "+Match User johndoe" in run.stdout
    assert "would-change" in run.stdout
    for host in fleet.hosts:
        assert etc_ssh_state(host) == before[host.name]
        assert host.sighup_count() == hups[host.name]
        assert host.run("getent passwd johndoe", check=False).returncode != 0  # no user created either


def test_apply_converges_certificates_log_in_and_second_run_is_a_noop(fresh_hosts, tmp_path: Path) -> None:
    fleet = fresh_hosts([HostSpec("app1"), HostSpec("app2", flavour="rhel"), HostSpec("app3", suite="trixie")])
    ca = make_ca(tmp_path)
    inventory = write_inventory(fleet, tmp_path / "inventory.yml", settings(ca.public_key))

    first = sshd_setup("apply", "--yes", "-i", inventory, "--json")

    assert first.returncode == 0, first.stdout + first.stderr
    for host in fleet.hosts:
        result = first.host(host.name)
        assert result["status"] == "changed", result
        assert result["reloaded"] and "new login verified" in result["reason"]
        assert "(the new sshd wrote its pid file)" in result["reason"]  # OpenSSH 9.2 and 10.0, RHEL layout
        assert sorted(result["users_created"]) == ["johndoe", "ops", "vmuser"]
        assert result["round_trips"] <= 3, result

    keys = tmp_path / "keys"
    user_key = make_user_key(keys, "person")
    cert = {p: ca.sign(user_key, [p], validity="+10m") for p in ("jdoe", "bwayne", "mallory")}
    host_for_unmapped = fleet.hosts[0]
    host_for_unmapped.run("useradd -m alice")
    for host in fleet.hosts:
        expectations = [
            ("johndoe", "jdoe", True),  # single-name mode
            ("johndoe", "bwayne", False),
            ("vmuser", "jdoe", True),  # list-file mode
            ("vmuser", "bwayne", True),
            ("vmuser", "mallory", False),
            ("ops", "mallory", True),  # all-users mode: any signed certificate
        ]
        for user, principal, allowed in expectations:
            login = try_login(host, user, user_key, cert[principal])
            assert login.success is allowed, f"{host.name}: {principal} as {user}: {login}"
            if not allowed:
                assert login.reason, login
    unmapped = try_login(host_for_unmapped, "alice", user_key, cert["jdoe"])
    assert not unmapped.success, unmapped

    hups = {h.name: h.sighup_count() for h in fleet.hosts}
    second = sshd_setup("apply", "--yes", "-i", inventory, "--json")
    assert second.returncode == 0, second.stdout + second.stderr
    for host in fleet.hosts:
        result = second.host(host.name)
        assert result["status"] == "unchanged", result
        assert "already matches" in result["reason"]
        assert result["round_trips"] == 1 and not result["reloaded"]
        assert host.sighup_count() == hups[host.name], "a no-op run must not reload sshd"


def test_allow_all_admits_any_principal_as_any_existing_user(fresh_hosts, tmp_path: Path) -> None:
    fleet = fresh_hosts([HostSpec("open1")])
    host = fleet.hosts[0]
    host.run("useradd -m alice && useradd -m bob")
    ca = make_ca(tmp_path)
    inventory = write_inventory(fleet, tmp_path / "inventory.yml", {"ca_keys": [ca.public_key], "allow_all": True})
    run = sshd_setup("apply", "--yes", "-i", inventory, "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    key = make_user_key(tmp_path / "k", "anyone")
    cert = ca.sign(key, ["someone-else"])
    for user in ("alice", "bob"):
        login = try_login(host, user, key, cert)
        assert login.success, login
    other_ca = make_ca(tmp_path / "other")
    foreign = other_ca.sign(key, ["alice"], name="foreign")
    assert not try_login(host, "alice", key, foreign).success


def test_port_2222_blocks_that_host_and_others_converge(fresh_hosts, tmp_path: Path) -> None:
    fleet = fresh_hosts([HostSpec("port1"), HostSpec("port2")])
    blocked = fleet.host("port2")
    blocked.run("printf 'Port 2222\\nPort 22\\n' > /etc/ssh/sshd_config.d/10-port.conf && systemctl reload ssh")
    before = etc_ssh_state(blocked)
    ca = make_ca(tmp_path)
    inventory = write_inventory(fleet, tmp_path / "inventory.yml", settings(ca.public_key))

    run = sshd_setup("apply", "--yes", "-i", inventory, "--json")

    assert run.returncode == 1
    assert run.host("port1")["status"] == "changed"
    result = run.host("port2")
    assert result["status"] == "blocked"
    codes = {f["code"] for f in result["findings"] if f["severity"] == "error"}
    assert any("PORT" in code for code in codes), result
    assert etc_ssh_state(blocked) == before


def test_assembled_tree_failing_sshd_t_leaves_the_host_byte_identical(fresh_hosts, tmp_path: Path) -> None:
    fleet = fresh_hosts([HostSpec("broken1")])
    host = fleet.hosts[0]
    # A drop-in written after sshd started: the running daemon is fine, the tree on disk is not.
    host.run("echo 'ThisIsNotAKeyword yes' > /etc/ssh/sshd_config.d/99-broken.conf")
    before = etc_ssh_state(host)
    hups = host.sighup_count()
    ca = make_ca(tmp_path)
    inventory = write_inventory(fleet, tmp_path / "inventory.yml", settings(ca.public_key, create_users=False))
    host.run("useradd johndoe; useradd vmuser; useradd ops")

    # The drop-in is a pending foreign change (an error finding): allowed here, to reach sshd -t.
    run = sshd_setup("apply", "--yes", "-i", inventory, "--json", "--allow", "PENDING-FOREIGN-CHANGE")

    assert run.returncode == 1
    result = run.host("broken1")
    assert result["status"] == "failed"
    assert "sshd -t refused" in result["reason"] and "ThisIsNotAKeyword" in result["reason"], result
    assert etc_ssh_state(host) == before
    assert host.sighup_count() == hups
    assert host.run("ls -a /etc/ssh | grep -c sshd-setup-new", check=False).stdout.strip() == "0"


def test_failed_reload_is_rolled_back_and_sshd_answers_again(fresh_hosts, tmp_path: Path) -> None:
    fleet = fresh_hosts([HostSpec("reload1")])
    host = fleet.hosts[0]
    original = host.read_file("/etc/ssh/sshd_config")
    # Test hook on the host: this unit's "reload" kills sshd, as a new sshd failing to start would.
    host.run(
        "mkdir -p /etc/systemd/system/ssh.service.d && printf '[Service]\\nExecReload=\\n"
        "ExecReload=/bin/kill -TERM $MAINPID\\nRestart=no\\n' > /etc/systemd/system/ssh.service.d/break.conf"
        " && systemctl daemon-reload"
    )
    ca = make_ca(tmp_path)
    inventory = write_inventory(fleet, tmp_path / "inventory.yml", settings(ca.public_key))

    run = sshd_setup("apply", "--yes", "-i", inventory, "--json")

    assert run.returncode == 1
    result = run.host("reload1")
    assert result["status"] == "failed-rolled-back", result
    assert "sshd is up again" in result["reason"] or "answers again" in result["reason"], result
    assert host.read_file("/etc/ssh/sshd_config") == original
    assert host.run("test -e /etc/ssh/ca.pub", check=False).returncode == 1
    assert host.run("systemctl is-active ssh").stdout.strip() == "active"


def test_rollback_restores_byte_identical_originals(fresh_hosts, tmp_path: Path) -> None:
    fleet = fresh_hosts([HostSpec("undo1"), HostSpec("undo2", flavour="rhel")])
    originals = {h.name: h.read_file("/etc/ssh/sshd_config") for h in fleet.hosts}
    ca = make_ca(tmp_path)
    inventory = write_inventory(fleet, tmp_path / "inventory.yml", settings(ca.public_key))
    assert sshd_setup("apply", "--yes", "-i", inventory).returncode == 0

    run = sshd_setup("rollback", "--yes", "-i", inventory, "--json")

    assert run.returncode == 0, run.stdout + run.stderr
    for host in fleet.hosts:
        assert run.host(host.name)["status"] == "changed"
        assert host.read_file("/etc/ssh/sshd_config") == originals[host.name]
        assert host.run("test -e /etc/ssh/ca.pub", check=False).returncode == 1
        assert host.run(f"systemctl is-active {host.unit}").stdout.strip() == "active"


def test_unreachable_host_is_reported_while_others_converge(fresh_hosts, tmp_path: Path) -> None:
    fleet = fresh_hosts([HostSpec("reach1")])
    nowhere = fleet.hosts[0].address.rsplit(".", 1)[0] + ".250"  # on our bridge, nothing there
    ca = make_ca(tmp_path)
    inventory = write_inventory(
        fleet, tmp_path / "inventory.yml", settings(ca.public_key), extra_hosts={"ghost": {"ansible_host": nowhere}}
    )
    run = sshd_setup("apply", "--yes", "-i", inventory, "--json")
    assert run.returncode == 1
    assert run.host("reach1")["status"] == "changed"
    assert run.host("ghost")["status"] == "unreachable"
    assert nowhere in run.host("ghost")["reason"]


def test_socket_activated_host_converges_without_a_reload_error(fresh_hosts, tmp_path: Path) -> None:
    fleet = fresh_hosts([HostSpec("sock1", socket_activated=True)])
    host = fleet.hosts[0]
    ca = make_ca(tmp_path)
    inventory = write_inventory(fleet, tmp_path / "inventory.yml", settings(ca.public_key))
    run = sshd_setup("apply", "--yes", "-i", inventory, "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.host("sock1")["status"] == "changed", run.host("sock1")
    assert "(the init system says it is up)" in run.host("sock1")["reason"]  # no listener to re-exec here
    key = make_user_key(tmp_path / "k", "person")
    assert try_login(host, "johndoe", key, ca.sign(key, ["jdoe"])).success


def test_foreign_ca_is_refused_by_default_and_merged_when_asked(fresh_hosts, tmp_path: Path) -> None:
    fleet = fresh_hosts([HostSpec("ca1")])
    host = fleet.hosts[0]
    old_ca = make_ca(tmp_path / "old")
    host.write_file("/etc/ssh/old_ca.pub", (old_ca.public_key + "\n").encode())
    host.run(
        "printf 'TrustedUserCAKeys /etc/ssh/old_ca.pub\\n' > /etc/ssh/sshd_config.d/50-old-ca.conf"
        " && systemctl reload ssh && useradd -m alice"
    )
    new_ca = make_ca(tmp_path / "new")
    inventory = write_inventory(fleet, tmp_path / "inventory.yml", settings(new_ca.public_key))

    refused = sshd_setup("apply", "--yes", "-i", inventory, "--json")
    assert refused.returncode == 1
    result = refused.host("ca1")
    assert result["status"] == "blocked" and "FOREIGN-CA-KEYS" in result["reason"], result

    inventory = write_inventory(fleet, tmp_path / "inventory.yml", settings(new_ca.public_key, foreign_ca_keys="merge"))
    merged = sshd_setup("apply", "--yes", "-i", inventory, "--json")
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert old_ca.public_key.split()[1] in host.read_file("/etc/ssh/ca.pub").decode()
    key = make_user_key(tmp_path / "k", "person")
    assert try_login(host, "alice", key, old_ca.sign(key, ["alice"], name="old-alice")).success  # still trusted
    assert try_login(host, "johndoe", key, new_ca.sign(key, ["jdoe"], name="new-jdoe")).success
    again = sshd_setup("apply", "--yes", "-i", inventory, "--json")  # merged keys stay kept: a true no-op
    assert again.returncode == 0 and again.host("ca1")["status"] == "unchanged", again.host("ca1")


def test_missing_user_blocks_unless_create_users(fresh_hosts, tmp_path: Path) -> None:
    fleet = fresh_hosts([HostSpec("user1")])
    host = fleet.hosts[0]
    before = etc_ssh_state(host)
    ca = make_ca(tmp_path)
    inventory = write_inventory(fleet, tmp_path / "inventory.yml", settings(ca.public_key, create_users=False))
    run = sshd_setup("apply", "--yes", "-i", inventory, "--json")
    assert run.returncode == 1
    result = run.host("user1")
    assert result["status"] == "blocked" and "USER-MISSING" in result["reason"], result
    assert etc_ssh_state(host) == before
    created = sshd_setup(
        "apply", "--yes", "-i", write_inventory(fleet, tmp_path / "i2.yml", settings(ca.public_key)), "--json"
    )
    assert created.returncode == 0 and created.host("user1")["users_created"] == ["johndoe", "vmuser", "ops"]
    assert host.run("getent passwd johndoe").returncode == 0
    key = make_user_key(tmp_path / "k", "person")
    assert try_login(host, "johndoe", key, ca.sign(key, ["jdoe"])).success
