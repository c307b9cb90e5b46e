"""SshdSessionPath / SshdAuthPath (issue 15 item 7): OpenSSH >= 9.8's helpers must exist before a reload."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fleetrun import etc_ssh_state, sshd_setup, write_inventory
from tests.testhosts import HostSpec
from tests.testhosts.certs import make_ca

pytestmark = [pytest.mark.integration, pytest.mark.destructive]


def test_a_missing_sshd_session_blocks_and_the_apply_script_refuses_it_too(fresh_hosts, tmp_path: Path) -> None:
    fleet = fresh_hosts([HostSpec("helper1", suite="trixie")])  # OpenSSH 10.0
    host = fleet.hosts[0]
    host.run("echo 'SshdSessionPath /usr/lib/openssh/sshd-session.gone' > /etc/ssh/sshd_config.d/30-session.conf")
    assert host.run("sshd -t", check=False).returncode == 0  # sshd -t does not notice
    before = etc_ssh_state(host)
    hups = host.sighup_count()
    ca = make_ca(tmp_path)
    settings = {
        "ca_keys": [ca.public_key],
        "principals": [{"user": "johndoe", "principal": "jdoe"}],
        "create_users": True,
    }
    inventory = write_inventory(fleet, tmp_path / "inventory.yml", settings)
    allow = ("--allow", "PENDING-FOREIGN-CHANGE")

    blocked = sshd_setup("apply", "-i", inventory, "--yes", "--json", *allow)

    assert blocked.returncode == 1
    result = blocked.host("helper1")
    assert result["status"] == "blocked" and "SSHD-HELPER-MISSING" in result["reason"], result
    assert "/usr/lib/openssh/sshd-session.gone does not exist" in result["reason"]
    # Allowed past the finding, the apply script's own check stops it before anything changes.
    forced = sshd_setup("apply", "-i", inventory, "--yes", "--json", *allow, "--allow", "SSHD-HELPER-MISSING")
    assert forced.returncode == 1
    result = forced.host("helper1")
    assert result["status"] == "failed" and "nothing changed" in result["reason"], result
    assert "is not an executable file" in result["reason"]
    assert etc_ssh_state(host) == before and host.sighup_count() == hups
    assert host.run("systemctl is-active ssh").stdout.strip() == "active"
