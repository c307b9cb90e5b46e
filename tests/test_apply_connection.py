"""Connection settings on real hosts: sudo become, host key checking, ansible_connection local, INI, --limit."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.fleetrun import etc_ssh_state, sshd_setup, write_inventory
from tests.testhosts import HostSpec
from tests.testhosts.certs import make_ca

pytestmark = [pytest.mark.integration, pytest.mark.destructive]

MAPPING = [{"user": "johndoe", "principal": "jdoe"}]


def test_become_uses_sudo_for_a_non_root_login(fresh_hosts, tmp_path: Path) -> None:
    fleet = fresh_hosts([HostSpec("sudo1")])
    host = fleet.hosts[0]
    host.run(
        "useradd -m -s /bin/sh deploy && install -d -o deploy -m 700 /home/deploy/.ssh"
        " && install -o deploy -m 600 /root/.ssh/authorized_keys /home/deploy/.ssh/authorized_keys"
        " && echo 'deploy ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/deploy && chmod 440 /etc/sudoers.d/deploy"
    )
    ca = make_ca(tmp_path)
    settings = {"ca_keys": [ca.public_key], "principals": MAPPING, "create_users": True}
    inventory = write_inventory(fleet, tmp_path / "inventory.yml", settings)
    data = yaml.safe_load(inventory.read_text())
    data["all"]["vars"]["ansible_user"] = "deploy"
    inventory.write_text(yaml.safe_dump(data))

    without = sshd_setup("apply", "--yes", "-i", inventory, "--json")
    assert without.returncode == 1
    assert without.host("sudo1")["status"] == "failed", without.host("sudo1")

    data["all"]["vars"]["ansible_become"] = True
    inventory.write_text(yaml.safe_dump(data))
    run = sshd_setup("apply", "--yes", "-i", inventory, "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.host("sudo1")["status"] == "changed"
    assert b"TrustedUserCAKeys /etc/ssh/ca.pub" in host.read_file("/etc/ssh/sshd_config")


def test_host_key_checking_is_on_by_default(fresh_hosts, tmp_path: Path) -> None:
    fleet = fresh_hosts([HostSpec("hk1")])
    ca = make_ca(tmp_path)
    inventory = write_inventory(fleet, tmp_path / "inventory.yml", {"ca_keys": [ca.public_key]})
    data = yaml.safe_load(inventory.read_text())
    del data["all"]["vars"]["ansible_ssh_common_args"]  # no known_hosts for these hosts
    inventory.write_text(yaml.safe_dump(data))

    refused = sshd_setup("check", "-i", inventory, "--json")
    assert refused.returncode == 1
    assert refused.host("hk1")["status"] == "unreachable"
    assert "known_hosts" in refused.host("hk1")["reason"]

    relaxed = sshd_setup("check", "-i", inventory, "--json", "--no-host-key-checking")
    assert relaxed.returncode == 0, relaxed.stdout + relaxed.stderr
    assert relaxed.host("hk1")["status"] == "checked"


def test_a_changed_host_key_is_refused_even_when_known(fresh_hosts, tmp_path: Path) -> None:
    fleet = fresh_hosts([HostSpec("hk2")])
    known = fleet.known_hosts_path.read_text()
    other = tmp_path / "other_key"
    import subprocess

    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    forged = tmp_path / "known_hosts"
    address = fleet.hosts[0].address
    forged.write_text(
        "".join(line for line in known.splitlines(keepends=True) if not line.startswith(address))
        + f"{address} {other.with_suffix('.pub').read_text().split()[0]} "
        + f"{other.with_suffix('.pub').read_text().split()[1]}\n"
    )
    ca = make_ca(tmp_path)
    inventory = write_inventory(fleet, tmp_path / "inventory.yml", {"ca_keys": [ca.public_key]})
    data = yaml.safe_load(inventory.read_text())
    data["all"]["vars"]["ansible_ssh_common_args"] = f"-o UserKnownHostsFile={forged}"
    inventory.write_text(yaml.safe_dump(data))
    run = sshd_setup("check", "-i", inventory, "--json")
    assert run.returncode == 1
    assert run.host("hk2")["status"] == "unreachable"


def test_ini_inventory_and_limit_patterns_select_hosts(fresh_hosts, tmp_path: Path) -> None:
    fleet = fresh_hosts([HostSpec("ini1"), HostSpec("ini2", flavour="rhel")])
    ca = make_ca(tmp_path)
    yaml_inventory = yaml.safe_load(fleet.inventory_path.read_text())
    common = yaml_inventory["all"]["vars"]
    lines = [
        "[debian]",
        f"ini1 ansible_host={fleet.host('ini1').address}",
        "",
        "[redhat]",
        f"ini2 ansible_host={fleet.host('ini2').address}",
        "",
        "[all:vars]",
        f"ansible_user={common['ansible_user']}",
        f"ansible_ssh_private_key_file={common['ansible_ssh_private_key_file']}",
        f"ansible_ssh_common_args='{common['ansible_ssh_common_args']}'",
        f'sshd_setup={{"ca_keys": ["{ca.public_key}"]}}',
        "",
    ]
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("\n".join(lines))
    before = etc_ssh_state(fleet.host("ini2"))

    run = sshd_setup("apply", "--yes", "-i", inventory, "--limit", "all,!redhat", "--json")

    assert run.returncode == 0, run.stdout + run.stderr
    assert [h["host"] for h in run.json["hosts"]] == ["ini1"]
    assert run.host("ini1")["status"] == "changed"
    assert etc_ssh_state(fleet.host("ini2")) == before


def test_local_connection_reads_this_machine_in_dry_run(tmp_path: Path) -> None:
    """ansible_connection: local, read-only: facts come from this machine without SSH."""
    import os

    if os.geteuid() != 0:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("needs root in CI")
        pytest.skip("needs root to read this machine's sshd configuration")
    if not Path("/etc/ssh/sshd_config").exists():
        pytest.fail("openssh-server must be installed (scripts/setup.sh installs it)")
    ca = make_ca(tmp_path)
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "all": {
                    "hosts": {"this-machine": {"ansible_connection": "local"}},
                    "vars": {"sshd_setup": {"ca_keys": [ca.public_key]}},
                }
            }
        )
    )
    before = Path("/etc/ssh/sshd_config").read_bytes()
    run = sshd_setup("apply", "--yes", "-i", inventory, "--dry-run", "--json")
    result = run.host("this-machine")
    assert result["status"] in ("would-change", "blocked", "unchanged"), result
    assert any(f["path"] == "/etc/ssh/sshd_config" for f in result["files"]) or result["status"] == "blocked"
    assert Path("/etc/ssh/sshd_config").read_bytes() == before


def _run_in_pty(argv: list[str], answer: str, timeout: float = 120) -> tuple[int, str]:
    """Run argv on a pseudo-terminal, type `answer` at its password prompt, return (exit code, output)."""
    import os
    import pty
    import select
    import subprocess
    import time

    leader, follower = pty.openpty()
    proc = subprocess.Popen(argv, stdin=follower, stdout=follower, stderr=follower, close_fds=True)
    os.close(follower)
    output, answered, deadline = b"", False, time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
            if not answered and b"BECOME password:" in output:
                os.write(leader, answer.encode() + b"\n")
                answered = True
        elif proc.poll() is not None:
            break
    proc.wait(timeout=10)
    os.close(leader)
    return proc.returncode, output.decode(errors="replace")


def test_ask_become_pass_feeds_sudo_a_password_typed_at_a_terminal(fresh_hosts, tmp_path: Path) -> None:
    import sys

    fleet = fresh_hosts([HostSpec("pass1")])
    host = fleet.hosts[0]
    host.run(
        "useradd -m -s /bin/sh deploy && echo 'deploy:correct horse' | chpasswd"
        " && install -d -o deploy -m 700 /home/deploy/.ssh"
        " && install -o deploy -m 600 /root/.ssh/authorized_keys /home/deploy/.ssh/authorized_keys"
        " && echo 'deploy ALL=(ALL) ALL' > /etc/sudoers.d/deploy && chmod 440 /etc/sudoers.d/deploy"
    )
    ca = make_ca(tmp_path)
    inventory = write_inventory(fleet, tmp_path / "inventory.yml", {"ca_keys": [ca.public_key]})
    data = yaml.safe_load(inventory.read_text())
    data["all"]["vars"].update({"ansible_user": "deploy", "ansible_become": True})
    inventory.write_text(yaml.safe_dump(data))
    argv = [sys.executable, "-m", "sshd_setup", "apply", "--yes", "-i", str(inventory), "-K", "--json"]

    wrong_code, wrong_out = _run_in_pty(argv, "wrong password")
    assert wrong_code == 1, wrong_out
    assert "sudo refused the become password" in wrong_out
    assert "wrong password" not in wrong_out  # the typed password is never echoed or printed
    assert b"TrustedUserCAKeys" not in host.read_file("/etc/ssh/sshd_config")

    code, out = _run_in_pty(argv, "correct horse")
    assert code == 0, out
    assert "correct horse" not in out
    assert b"TrustedUserCAKeys /etc/ssh/ca.pub" in host.read_file("/etc/ssh/sshd_config")

    # verify -K: the same password reaches the verification suite's sudo (never its argv or output)
    no_password = sshd_setup("verify", "-i", inventory)
    assert no_password.returncode == 1 and "a password is required" in no_password.stdout, no_password
    code, out = _run_in_pty([sys.executable, "-m", "sshd_setup", "verify", "-i", str(inventory), "-K"], "correct horse")
    assert code == 0, out
    assert "correct horse" not in out and "1 passed" in out
