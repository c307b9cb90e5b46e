"""The collection sshd_setup.gateway under the real `ansible-playbook`, on real container hosts.

One fleet for the module: each test uses its own hosts of it, so the tests do not depend on each other.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.ansiblerun import AnsibleHome, write_playbook
from tests.conftest import require_test_hosts
from tests.fleetrun import etc_ssh_state, sha256, sshd_setup, write_inventory
from tests.testhosts import Fleet, Host, HostSpec
from tests.testhosts.certs import CertificateAuthority, make_ca, make_user_key, try_login

pytestmark = [pytest.mark.integration, pytest.mark.destructive]

SPECS = [
    HostSpec("x"),
    HostSpec("y", flavour="rhel"),
    HostSpec("z", socket_activated=True),
    HostSpec("port"),  # Port 2222: blocked by a finding
    HostSpec("guard"),  # the lockout guard fails (test hook): rolled back
    HostSpec("twin1"),  # applied by the action plugin ...
    HostSpec("twin2"),  # ... and by `sshd-setup apply`: identical results
]
MAPPINGS = [
    {"user": "johndoe", "principal": "jdoe@example.com"},
    {"user": "vmuser", "principals": ["jdoe", "bwayne", "robin"], "file": "/etc/ssh/vmusers-list.txt"},
    {"user": "ops", "any_principal": True},
]
MANAGED = ("/etc/ssh/sshd_config", "/etc/ssh/ca.pub", "/etc/ssh/vmusers-list.txt")


class World:
    def __init__(self, fleet: Fleet, root: Path) -> None:
        self.fleet = fleet
        self.ansible = AnsibleHome(root / "ansible")
        self.ansible.install_collection()
        self.ca = make_ca(root / "ca")
        settings = {"ca_keys": [self.ca.public_key], "principals": MAPPINGS, "create_users": True}
        nowhere = fleet.hosts[0].address.rsplit(".", 1)[0] + ".250"  # on the fleet's bridge, nothing there
        ghost = {"ghost": {"ansible_host": nowhere, "ansible_ssh_timeout": 2}}
        self.inventory = write_inventory(fleet, root / "inventory.yml", settings, extra_hosts=ghost)
        self.apply = write_playbook(root / "apply.yml")
        self.rollback = write_playbook(root / "rollback.yml", "sshd_setup.gateway.rollback")
        self.verify = write_playbook(root / "verify.yml", "sshd_setup.gateway.verify")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    require_test_hosts()
    with Fleet.up(SPECS) as fleet:
        yield World(fleet, tmp_path_factory.mktemp("ansible-collection"))


def assert_certificate_logins(host: Host, ca: CertificateAuthority, keys: Path) -> None:
    user_key = make_user_key(keys, f"person-{host.name}")
    cert = {p: ca.sign(user_key, [p], name=f"{host.name}-{p}", validity="+10m") for p in ("jdoe", "bwayne", "mallory")}
    for user, principal, allowed in [
        ("johndoe", "jdoe", True),  # single name
        ("johndoe", "bwayne", False),
        ("vmuser", "bwayne", True),  # list file
        ("vmuser", "mallory", False),
        ("ops", "mallory", True),  # any certificate signed by the CA
    ]:
        login = try_login(host, user, user_key, cert[principal])
        assert login.success is allowed, f"{host.name}: {principal} as {user}: {login}"


def test_playbook_check_diff_apply_rerun_a_blocked_and_an_unreachable_host(world: World, tmp_path: Path) -> None:
    fleet, ansible = world.fleet, world.ansible
    hosts = [fleet.host(name) for name in ("x", "y", "z")]
    blocked = fleet.host("port")
    blocked.run("printf 'Port 2222\\nPort 22\\n' > /etc/ssh/sshd_config.d/10-port.conf && systemctl reload ssh")
    limit = ("--limit", "x,y,z,port")
    before = {h.name: etc_ssh_state(h) for h in [*hosts, blocked]}
    hups = {h.name: h.sighup_count() for h in hosts}

    check = ansible.playbook(world.apply, world.inventory, *limit, "--check", "--diff")

    assert "+TrustedUserCAKeys /etc/ssh/ca.pub" in check.stdout and "+Match User johndoe" in check.stdout
    assert "+++ /etc/ssh/ca.pub" in check.stdout, check.stdout
    for host in hosts:
        result = check.host(host.name)
        assert result["status"] == "would-change" and result["changed"], result
    for host in [*hosts, blocked]:
        assert etc_ssh_state(host) == before[host.name], f"--check changed {host.name}"
    assert all(h.sighup_count() == hups[h.name] for h in hosts)

    first = ansible.playbook(world.apply, world.inventory, "--limit", "x,y,z,port,ghost")

    assert first.returncode != 0, first.stdout + first.stderr
    for host in hosts:
        result = first.host(host.name)
        assert result["status"] == "changed" and result["changed"], result
        assert "new login verified" in result["reason"] and result["reloaded"], result
        assert sorted(result["users_created"]) == ["johndoe", "ops", "vmuser"]
        assert result["backup"], result
    port = first.host("port")
    assert port["status"] == "blocked", port
    assert first.recap("port")["failed"] == 1 and first.recap("x")["failed"] == 0, first.stdout
    assert first.recap("ghost")["unreachable"] == 1 and first.host("ghost")["status"] == "unreachable"
    assert any("PORT" in f["code"] and f["severity"] == "error" for f in port["findings"]), port
    assert "PORT" in port["msg"]
    assert etc_ssh_state(blocked) == before["port"]

    # Arguments: allow accepts the finding, and create_users given here replaces the variable's key.
    overridden = write_playbook(tmp_path / "allow.yml", args={"allow": ["PORT-NOT-22"], "create_users": False})
    allowed = ansible.playbook(overridden, world.inventory, "--limit", "port", "--check")
    result = allowed.host("port")
    assert result["status"] == "blocked" and "USER-MISSING" in result["reason"], result
    assert {f["code"] for f in result["findings"] if f["severity"] == "error"} == {"PORT-NOT-22", "USER-MISSING"}
    assert result["reason"].startswith("USER-MISSING:") and "PORT-NOT-22" not in result["reason"]  # allowed
    assert "allow: [USER-MISSING]" in result["reason"]

    keys = tmp_path / "keys"
    for host in hosts:
        assert_certificate_logins(host, world.ca, keys)

    hups = {h.name: h.sighup_count() for h in hosts}
    second = ansible.playbook(world.apply, world.inventory, "--limit", "x,y,z")

    assert second.returncode == 0, second.stdout + second.stderr
    for host in hosts:
        result = second.host(host.name)
        assert result["status"] == "unchanged" and not result["changed"], result
        assert not result["reloaded"]
        assert host.sighup_count() == hups[host.name], f"{host.name}: a no-op run must not reload sshd"
    assert all(second.recap(h.name)["changed"] == second.recap(h.name)["failed"] == 0 for h in hosts), second.stdout


def test_guard_failure_under_ansible_is_rolled_back(world: World) -> None:
    host = world.fleet.host("guard")
    original = host.read_file("/etc/ssh/sshd_config")

    run = world.ansible.playbook(world.apply, world.inventory, "--limit", "guard", SSHD_SETUP_TEST_BREAK_GUARD="1")

    assert run.returncode == 2, run.stdout + run.stderr
    result = run.host("guard")
    assert result["status"] == "failed-rolled-back" and run.recap("guard")["failed"] == 1, result
    assert "lockout guard failed" in result["reason"] and "sshd answers again" in result["reason"], result
    assert result["backup"] in result["reason"]
    assert host.read_file("/etc/ssh/sshd_config") == original
    assert host.run("test -e /etc/ssh/ca.pub", check=False).returncode == 1
    assert host.run("systemctl is-active ssh").stdout.strip() == "active"
    assert host.run("true", multiplex=False).returncode == 0  # a new login works

    # Again as a non-root user with become (sudo), without the hook: Ansible's become carries our scripts.
    host.run(
        "useradd -m deploy && install -d -o deploy -m 700 ~deploy/.ssh && install -o deploy -m 600"
        " /root/.ssh/authorized_keys ~deploy/.ssh/ && echo 'deploy ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/deploy"
    )
    as_deploy = write_inventory(
        world.fleet,
        world.inventory.with_name("become.yml"),
        yaml.safe_load(world.inventory.read_text())["all"]["vars"]["sshd_setup"],
        extra_hosts={"guard": {"ansible_host": host.address, "ansible_user": "deploy", "ansible_become": True}},
    )
    again = world.ansible.playbook(world.apply, as_deploy, "--limit", "guard")

    assert again.returncode == 0, again.stdout + again.stderr
    assert again.host("guard")["status"] == "changed" and "new login verified" in again.host("guard")["reason"]
    assert host.run("stat -c %U:%a /etc/ssh/ca.pub").stdout.strip() == "root:644"
    sudo_log = host.run("journalctl --no-pager -t sudo").stdout
    assert "deploy : PWD=/home/deploy ; USER=root ; COMMAND=/bin/sh -c" in sudo_log and "sh -s" in sudo_log


def effective_config(host: Host) -> str:
    """`sshd -T` for a connection of each mapped user: the running configuration's decisions."""
    users = ("johndoe", "vmuser", "ops")
    return "".join(host.run(f"sshd -T -C user={user},host=gw.example,addr=192.0.2.1").stdout for user in users)


def host_state(host: Host) -> dict[str, str]:
    state = {path: sha256(host.read_file(path)) for path in MANAGED}
    state["modes"] = host.run(f"stat -c '%n %U:%G %a' {' '.join(MANAGED)}").stdout
    state["users"] = host.run("getent passwd johndoe vmuser ops").stdout
    state["sshd -T"] = effective_config(host)
    return state


def test_action_plugin_and_cli_leave_identical_hosts_verify_and_rollback(world: World) -> None:
    by_ansible, by_cli = world.fleet.host("twin1"), world.fleet.host("twin2")
    original = by_ansible.read_file("/etc/ssh/sshd_config")

    played = world.ansible.playbook(world.apply, world.inventory, "--limit", "twin1")
    applied = sshd_setup("apply", "--yes", "-i", world.inventory, "--limit", "twin2", "--json")

    assert played.returncode == 0, played.stdout + played.stderr
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert played.host("twin1")["status"] == applied.host("twin2")["status"] == "changed"
    assert played.host("twin1")["files"] == [
        {key: f[key] for key in ("path", "reason", "changed")} for f in applied.host("twin2")["files"]
    ]
    assert host_state(by_ansible) == host_state(by_cli)

    verified = world.ansible.playbook(world.verify, world.inventory, "--limit", "twin1")

    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.host("twin1")["status"] == "passed", verified.host("twin1")
    assert any(c["check"] == "nothing_to_apply" and c["status"] == "passed" for c in verified.host("twin1")["checks"])

    undone = world.ansible.playbook(world.rollback, world.inventory, "--limit", "twin1")

    assert undone.returncode == 0, undone.stdout + undone.stderr
    result = undone.host("twin1")
    assert result["status"] == "changed" and result["backup"] == played.host("twin1")["backup"], result
    assert by_ansible.read_file("/etc/ssh/sshd_config") == original
    assert by_ansible.run("test -e /etc/ssh/ca.pub", check=False).returncode == 1
