"""Addresses and extra socket ports (issue 15 item 6)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sshd_setup.core.facts import HostFacts
from sshd_setup.core.findings import find_problems
from sshd_setup.core.tree import SnapshotEntry
from sshd_setup.gather import parse_facts
from tests.fleetrun import etc_ssh_state, sshd_setup, write_inventory
from tests.helpers import desired_from
from tests.testhosts import HostSpec
from tests.testhosts.fleet import wait_banner

MAIN = "/etc/ssh/sshd_config"


def listen_findings(config: str, addresses: frozenset[str] | None) -> list[str]:
    facts = HostFacts(os_id="debian", init="systemd", files={MAIN: SnapshotEntry(config)}, addresses=addresses)
    facts.dirs = {"/etc/ssh"}
    desired = desired_from({"principals": [{"user": "root", "principal": "root"}]})
    return [f.message for f in find_problems(desired, facts, None) if f.code == "LISTEN-ADDRESS-NOT-ON-HOST"]


def test_listen_address_must_be_one_of_the_hosts() -> None:
    own = frozenset({"127.0.0.1", "10.0.0.5", "::1", "fe80::1"})
    assert listen_findings("ListenAddress 10.0.0.5\nListenAddress 0.0.0.0\nListenAddress [::1]:22\n", own) == []
    assert listen_findings("ListenAddress ::\nListenAddress fe80::1%eth0\nListenAddress gw.example\n", own) == []
    missing = listen_findings("ListenAddress 192.0.2.55\nListenAddress 10.0.0.9:22\n", own)
    assert len(missing) == 2 and "192.0.2.55 is not an address of this host" in missing[0]
    assert listen_findings("ListenAddress 192.0.2.55\n", None) == []  # not gathered: not judged


def test_the_facts_script_gathers_addresses_only_for_a_listen_address(tmp_path: Path) -> None:
    import subprocess

    from sshd_setup.gather import facts_script

    for config, gathered in (("Port 22\n", False), ("ListenAddress 127.0.0.1\n", True)):
        main = tmp_path / "sshd_config"
        main.write_text(config)
        desired = desired_from(
            {
                "sshd_config": str(main),
                "managed_dirs": [str(tmp_path)],
                "principals": [{"user": "root", "principal": "root"}],
            }
        )
        out = subprocess.run(["sh", "-s"], input=facts_script(desired, "OpenSSH_9.2"), capture_output=True, text=True)
        facts, _ = parse_facts(out.stdout)
        assert (facts.addresses is not None) is gathered
        if gathered:
            assert facts.addresses is not None and "127.0.0.1" in facts.addresses


@pytest.mark.integration
def test_unknown_listen_address_and_an_extra_socket_port_block(fresh_hosts, tmp_path: Path) -> None:
    from tests.testhosts.certs import make_ca

    fleet = fresh_hosts([HostSpec("addr1"), HostSpec("addr2", socket_activated=True, socket_style="service")])
    listen, socket = fleet.host("addr1"), fleet.host("addr2")
    listen.run("echo 'ListenAddress 192.0.2.55' > /etc/ssh/sshd_config.d/30-listen.conf")  # on disk, not loaded
    socket.run_nsenter(
        "mkdir -p /etc/systemd/system/ssh.socket.d && printf '[Socket]\\nListenStream=2222\\n'"
        " > /etc/systemd/system/ssh.socket.d/extra.conf && systemctl daemon-reload && systemctl restart ssh.socket"
    )
    assert wait_banner(socket.address, 22) and wait_banner(socket.address, 2222)
    before = {h.name: etc_ssh_state(h) for h in fleet.hosts}
    ca = make_ca(tmp_path)
    settings = {
        "ca_keys": [ca.public_key],
        "principals": [{"user": "johndoe", "principal": "jdoe"}],
        "create_users": True,
    }
    inventory = write_inventory(fleet, tmp_path / "inventory.yml", settings)

    run = sshd_setup("apply", "-i", inventory, "--yes", "--json", "--allow", "PENDING-FOREIGN-CHANGE")

    assert run.returncode == 1
    for host, code in ((listen, "LISTEN-ADDRESS-NOT-ON-HOST"), (socket, "SOCKET-PORT-NOT-22")):
        result = run.host(host.name)
        assert result["status"] == "blocked" and code in result["reason"], result
        assert etc_ssh_state(host) == before[host.name]
    assert wait_banner(listen.address, 22)
    assert wait_banner(socket.address, 22) and wait_banner(socket.address, 2222)


@pytest.mark.integration
def test_a_socket_drop_in_under_usr_lib_not_yet_daemon_reloaded_is_judged(fresh_hosts, tmp_path: Path) -> None:
    """Issue 15 item 8: drop-ins under /usr/lib count, and NeedDaemonReload=yes is said, not overlooked."""
    from tests.testhosts.certs import make_ca

    fleet = fresh_hosts([HostSpec("dr1", socket_activated=True, socket_style="service")])
    host = fleet.host("dr1")
    host.run_nsenter(  # written, never daemon-reloaded: the socket still listens on 22 only
        "mkdir -p /usr/lib/systemd/system/ssh.socket.d && printf '[Socket]\\nListenStream=2222\\n'"
        " > /usr/lib/systemd/system/ssh.socket.d/vendor.conf"
    )
    loaded = host.run_nsenter("systemctl show -p DropInPaths ssh.socket").stdout
    assert "vendor.conf" not in loaded  # systemd has not loaded it (and systemd 252 does not say NeedDaemonReload)
    before = etc_ssh_state(host)
    ca = make_ca(tmp_path)
    inventory = write_inventory(fleet, tmp_path / "inventory.yml", {"ca_keys": [ca.public_key]})

    check = sshd_setup("check", "-i", inventory, "--json")
    codes = {f["code"]: f for f in check.host("dr1")["findings"]}
    assert "SOCKET-DAEMON-RELOAD-PENDING" in codes, codes
    pending = codes["SOCKET-DAEMON-RELOAD-PENDING"]
    assert pending["severity"] == "error", pending  # it would add a port after the next daemon-reload or reboot
    assert "not loaded yet: /usr/lib/systemd/system/ssh.socket.d/vendor.conf" in pending["message"], pending
    assert "ListenStream=2222" in pending["message"], pending
    run = sshd_setup("apply", "-i", inventory, "--yes", "--json")
    assert run.returncode == 1 and run.host("dr1")["status"] == "blocked", run.host("dr1")
    assert "SOCKET-DAEMON-RELOAD-PENDING" in run.host("dr1")["reason"]
    assert etc_ssh_state(host) == before
    assert wait_banner(host.address, 22)


def test_pending_socket_drop_ins_are_judged_from_disk_not_only_from_systemd() -> None:
    from sshd_setup.core.facts import UnitState
    from sshd_setup.core.hostchecks import daemon_reload_findings

    loaded = "/etc/systemd/system/ssh.socket.d/10-a.conf"
    new = "/usr/lib/systemd/system/ssh.socket.d/vendor.conf"

    def judged(dropins: dict[str, str], paths: tuple[str, ...], need: bool = False) -> list[tuple[str, str]]:
        unit = UnitState("ssh.socket", "loaded", "active", listen=("[::]:22",), need_daemon_reload=need)
        unit = type(unit)(**{**vars(unit), "dropin_paths": paths})
        facts = HostFacts(init="systemd", units={"ssh.socket": unit}, socket_dropins=dropins)
        return [(f.severity.value, f.path) for f in daemon_reload_findings(facts)]

    same = {loaded: "[Socket]\nAccept=yes\n"}
    assert judged(same, (loaded,)) == []
    assert judged(same, (loaded,), need=True) == [("warning", "/etc/systemd/system/ssh.socket")]
    assert judged({**same, new: "[Socket]\nListenStream=2222\n"}, (loaded,)) == [("error", new)]
    assert judged({}, (loaded,)) == [("error", loaded)]  # loaded, then deleted: listening changes on reload
