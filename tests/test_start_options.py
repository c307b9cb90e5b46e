"""sshd's start options (issue 15 item 3) on real hosts: SSHD_OPTS, OPTIONS, ExecStart's -f."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fleetrun import etc_ssh_state, sshd_setup, write_inventory
from tests.testhosts import HostSpec
from tests.testhosts.certs import make_ca, make_user_key, try_login

pytestmark = [pytest.mark.integration, pytest.mark.destructive]

MAPPINGS = [{"user": "johndoe", "principal": "jdoe@example.com"}]


def test_start_options_block_other_ports_and_a_dash_f_config_is_the_one_managed(fresh_hosts, tmp_path: Path) -> None:
    fleet = fresh_hosts([HostSpec("opt1"), HostSpec("opt2", flavour="rhel"), HostSpec("opt3", suite="trixie")])
    debian, rhel, other = fleet.host("opt1"), fleet.host("opt2"), fleet.host("opt3")
    debian.run("sed -i 's/^SSHD_OPTS=.*/SSHD_OPTS=\"-p 2222\"/' /etc/default/ssh")  # sshd's next start
    rhel.run("sed -i 's/^OPTIONS=.*/OPTIONS=\"-o ListenAddress=0.0.0.0:2222\"/' /etc/sysconfig/sshd")
    other.run(
        "cp -p /etc/ssh/sshd_config /etc/ssh/sshd_config_gw && mkdir -p /etc/systemd/system/ssh.service.d"
        " && printf '[Service]\\nExecStart=\\nExecStart=/usr/sbin/sshd -D -f /etc/ssh/sshd_config_gw\\n'"
        " > /etc/systemd/system/ssh.service.d/config.conf && systemctl daemon-reload && systemctl restart ssh"
    )
    before = {h.name: etc_ssh_state(h) for h in fleet.hosts}
    ca = make_ca(tmp_path)
    settings = {"ca_keys": [ca.public_key], "principals": MAPPINGS, "create_users": True}
    inventory = write_inventory(fleet, tmp_path / "inventory.yml", settings)

    run = sshd_setup("apply", "-i", inventory, "--yes", "--json")

    assert run.returncode == 1, run.stdout + run.stderr
    for host, where in (
        (debian, "ssh.service ExecStart (with /etc/default/ssh)"),
        (rhel, "(with /etc/sysconfig/sshd)"),
    ):
        result = run.host(host.name)
        assert result["status"] == "blocked" and "START-OPTION-PORT" in result["reason"], result
        assert where in result["reason"] and "2222" in result["reason"], result
        assert etc_ssh_state(host) == before[host.name]
    managed = run.host("opt3")
    assert managed["status"] == "changed", managed
    assert next(f["path"] for f in managed["files"] if f["changed"]) == "/etc/ssh/sshd_config_gw", managed["files"]
    assert etc_ssh_state(other)["/etc/ssh/sshd_config"] == before["opt3"]["/etc/ssh/sshd_config"]
    key = make_user_key(tmp_path / "k", "person")
    assert try_login(other, "johndoe", key, ca.sign(key, ["jdoe"])).success
    again = sshd_setup("apply", "-i", inventory, "--limit", "opt3", "--yes", "--json")
    assert again.returncode == 0 and again.host("opt3")["status"] == "unchanged", again.stdout
    verified = sshd_setup("verify", "-i", inventory, "--limit", "opt3", "--json")  # judges the -f file
    assert verified.returncode == 0, verified.stdout[-3000:]
