"""Facts parsing and the reload decision (pure), plus the facts script run for real on this machine."""

from __future__ import annotations

import base64
import subprocess
import time
from pathlib import Path

import pytest

from sshd_setup.core.facts import HostFacts, UnitState
from sshd_setup.core.service import pid_file, service_plan
from sshd_setup.core.tree import SnapshotEntry, SnapshotSource, load_tree
from sshd_setup.gather import FactsError, facts_script, parse_facts
from sshd_setup.remote import HostLock
from tests.helpers import desired_from


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


OS_RELEASE = 'ID=rocky\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.3"\n'
SYSTEMD = (
    "Id=ssh.service\nLoadState=not-found\nActiveState=inactive\nUnitFileState=\n\n"
    "Id=sshd.service\nLoadState=loaded\nActiveState=active\nUnitFileState=enabled\n\n"
    "Listen=[::]:22 (Stream)\nId=sshd.socket\nLoadState=loaded\nActiveState=inactive\nUnitFileState=disabled\n"
)
MAIN = "Include /etc/ssh/sshd_config.d/*.conf\n"
OS_RELEASE_RECORDS = "".join(f"@@OSR {line}\n" for line in OS_RELEASE.splitlines())
SAMPLE = f"""@@BEGIN 1
{OS_RELEASE_RECORDS}@@SSHDV OpenSSH_8.7p1, OpenSSL 3.0.7 1 Nov 2022
@@INIT systemd
@@SYSTEMD
{b64(SYSTEMD)}
@@EOF
@@FILE /etc/ssh/sshd_config
{b64(MAIN)}
@@EOF
@@UNREADABLE /etc/ssh/sshd_config.d/secret.conf
@@DIR /etc/ssh/principals
@@META root:root:644:regular file:1764590000.250000000:/etc/ssh/ca.pub
@@META root:wheel:775:directory:1764590001.000000000:/etc/ssh/principals
@@META -:-:-:missing:/etc/ssh/vm list.txt
@@USERS johndoe ops
@@USER johndoe 1001 /home/johndoe
@@GROUPS johndoe johndoe wheel
@@UNITFILE ssh.socket loaded
@@UNITFILE sshd.service loaded
@@BACKUPS 20261101T101010Z 20261102T101010Z
@@END
"""


def test_parse_facts_reads_every_record() -> None:
    facts, backups = parse_facts(SAMPLE)
    assert (facts.os_id, facts.os_like, facts.sshd_version) == ("rocky", ("rhel", "centos", "fedora"), (8, 7))
    assert facts.units["sshd.service"].active and not facts.units["ssh.service"].exists
    assert facts.units["sshd.socket"].listen == ("[::]:22",)
    assert facts.files["/etc/ssh/sshd_config"].text == "Include /etc/ssh/sshd_config.d/*.conf\n"
    assert facts.files["/etc/ssh/sshd_config.d/secret.conf"].text is None
    assert facts.meta["/etc/ssh/principals"].mode == 0o775 and facts.meta["/etc/ssh/principals"].group == "wheel"
    assert not facts.meta["/etc/ssh/vm list.txt"].exists
    assert facts.meta["/etc/ssh/ca.pub"].mtime == 1764590000.25
    assert facts.users["johndoe"] is not None and facts.users["johndoe"].groups == ("johndoe", "wheel")
    assert facts.users["ops"] is None
    assert facts.units["ssh.socket"].exists and not facts.units["ssh.socket"].active  # from its unit file only
    assert facts.units["sshd.service"].active  # systemctl's word wins over the unit file's
    assert backups == ["20261101T101010Z", "20261102T101010Z"]


def test_truncated_facts_are_an_error() -> None:
    for broken in ("", "hello\n", SAMPLE.replace("@@END\n", "")):
        try:
            parse_facts(broken)
        except FactsError:
            continue
        raise AssertionError(f"accepted {broken[:20]!r}")


def test_facts_script_runs_on_this_machine_and_parses() -> None:
    desired = desired_from({"principals": [{"user": "root", "principals": ["x"], "file": "/etc/ssh/p/root"}]})
    proc = subprocess.run(["sh", "-s"], input=facts_script(desired), capture_output=True, text=True, timeout=60)
    facts, _ = parse_facts(proc.stdout)
    assert facts.os_id  # this machine's os-release
    assert facts.users["root"] is not None and facts.users["root"].uid == 0
    assert "/etc/ssh/ca.pub" in facts.meta and "/etc/ssh/p" in facts.meta


def unit(name: str, load: str = "loaded", active: str = "active", state: str = "enabled") -> UnitState:
    return UnitState(name, load, active, state)


def test_reload_decision_by_distribution_and_units() -> None:
    debian = HostFacts(os_id="debian", init="systemd", units={"ssh.service": unit("ssh.service")})
    assert service_plan(debian).reload == "systemctl reload ssh.service"
    rhel = HostFacts(os_id="rocky", os_like=("rhel",), init="systemd", units={"sshd.service": unit("sshd.service")})
    assert service_plan(rhel).reload == "systemctl reload sshd.service"
    ubuntu_socket = HostFacts(
        os_id="ubuntu",
        init="systemd",
        units={
            "ssh.service": unit("ssh.service", active="inactive", state="disabled"),
            "ssh.socket": unit("ssh.socket"),
        },
    )
    plan = service_plan(ubuntu_socket)
    assert plan.reload.startswith("if systemctl is-active --quiet ssh.service; then")
    assert plan.check == "systemctl is-active --quiet ssh.socket"
    assert "restart" not in plan.reload
    alpine = HostFacts(os_id="alpine", init="openrc")
    assert service_plan(alpine).reload == "rc-service sshd reload"
    old_debian = HostFacts(os_id="debian", init="sysvinit")
    assert service_plan(old_debian).reload == "service ssh reload"
    suse = HostFacts(os_id="opensuse-tumbleweed", os_like=("opensuse", "suse"), init="sysvinit")
    assert service_plan(suse).reload == "service sshd reload"


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("Port 22\n", ""),  # sshd's built-in place
        ("PidFile /var/run/other.pid\nPidFile /ignored.pid\n", "/var/run/other.pid"),  # first value wins
        ("PidFile none\n", "none"),
        ("PidFile relative.pid\n", "none"),
        ("Match User x\n  Banner none\nPidFile /after/match.pid\n", ""),  # inside a Match: not start-up
    ],
)
def test_pid_file_the_apply_script_watches(config: str, expected: str) -> None:
    source = SnapshotSource.of({"/etc/ssh/sshd_config": config}, {"/etc/ssh"})
    assert pid_file(load_tree(source)) == expected


def _run_facts(tmp_path: Path, config: str, sshd_version: str = "") -> str:
    main = tmp_path / "sshd_config"
    main.write_text(config)
    desired = desired_from(
        {
            "sshd_config": str(main),
            "managed_dirs": [str(tmp_path)],
            "principals": [{"user": "root", "principal": "admin"}],
        }
    )
    proc = subprocess.run(
        ["sh", "-s"], input=facts_script(desired, sshd_version), capture_output=True, text=True, timeout=60
    )
    assert "@@END" in proc.stdout, proc.stderr
    return proc.stdout


def test_users_groups_are_looked_up_only_when_the_config_names_groups(tmp_path: Path) -> None:
    plain = _run_facts(tmp_path, "PermitRootLogin prohibit-password\n")
    assert "@@USER root 0 " in plain and "@@GROUPS" not in plain
    for config in ("Match Group wheel\n  PasswordAuthentication no\n", "AllowGroups root\n", "DenyGroups x\n"):
        output = _run_facts(tmp_path, config)
        facts, _ = parse_facts(output)
        root = facts.users["root"]
        assert root is not None and "root" in root.groups, config


def test_the_banner_spares_the_host_an_sshd_run(tmp_path: Path) -> None:
    output = _run_facts(tmp_path, "Port 22\n", sshd_version="OpenSSH_9.9p1 Example-1")
    facts, _ = parse_facts(output)
    assert facts.sshd_version_text == "OpenSSH_9.9p1 Example-1" and facts.sshd_version == (9, 9)


def test_relative_includes_are_read_from_etc_ssh_not_the_working_directory(tmp_path: Path) -> None:
    # A relative Include is relative to /etc/ssh (sshd's rule); the script runs in the user's home, so a
    # file of the same name there must not be taken instead.
    (tmp_path / "decoy.conf").write_text("Port 2222\n")
    main = tmp_path / "sshd_config"
    main.write_text("Include decoy.conf\n")
    desired = desired_from(
        {
            "sshd_config": str(main),
            "managed_dirs": [str(tmp_path)],
            "principals": [{"user": "root", "principal": "admin"}],
        }
    )
    proc = subprocess.run(
        ["sh", "-s"], input=facts_script(desired), capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    facts, _ = parse_facts(proc.stdout)
    assert str(tmp_path / "decoy.conf") not in facts.files
    assert "/etc/ssh/decoy.conf" not in facts.files or facts.files["/etc/ssh/decoy.conf"].text is None


def test_openssh_version_from_the_ssh_banner() -> None:
    from sshd_setup.transport import openssh_version

    assert openssh_version("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3") == "OpenSSH_9.2p1 Debian-2+deb12u3"
    assert openssh_version("SSH-2.0-OpenSSH_10.0") == "OpenSSH_10.0"
    for other in ("SSH-2.0-OpenSSH", "SSH-2.0-dropbear_2022.83", "SSH-2.0-OpenSSH_9.2\x1b[31m", ""):
        assert openssh_version(other) == "", other


def _rhel_socket_facts(listen: tuple[str, ...] = ("[::]:22",)) -> HostFacts:
    """As systemctl shows a RHEL host with sshd.socket enabled: a not-found entry for every name asked."""
    return HostFacts(
        os_id="rhel",
        os_like=("fedora",),
        init="systemd",
        units={
            "ssh.service": UnitState("ssh.service"),
            "sshd.service": UnitState("sshd.service", "loaded", "inactive", "disabled", kill_mode="process"),
            "ssh.socket": UnitState("ssh.socket"),  # LoadState=not-found
            "sshd.socket": UnitState("sshd.socket", "loaded", "active", "enabled", listen, "yes"),
        },
    )


def test_a_not_found_ssh_socket_never_hides_sshd_socket() -> None:
    facts = _rhel_socket_facts()
    assert facts.socket_activated and facts.socket_unit is facts.units["sshd.socket"]
    plan = service_plan(facts)
    assert plan.check == "systemctl is-active --quiet sshd.socket"
    assert plan.start == "systemctl start sshd.socket"  # never sshd.service: Conflicts= would stop the socket
    assert "sshd.service" not in plan.start and not plan.rebinds
    assert plan.reload == "if systemctl is-active --quiet sshd.service; then systemctl reload sshd.service; fi"


def test_accept_no_socket_restarts_the_service_instead_of_a_reload() -> None:
    debian = HostFacts(
        os_id="debian",
        init="systemd",
        units={
            "ssh.service": UnitState("ssh.service", "loaded", "active", "disabled", kill_mode="process"),
            "ssh.socket": UnitState("ssh.socket", "loaded", "active", "enabled", ("[::]:22",), "no"),
            "sshd.socket": UnitState("sshd.socket"),
        },
    )
    plan = service_plan(debian)
    assert plan.reload == "if systemctl is-active --quiet ssh.service; then systemctl restart ssh.service; fi"
    assert plan.start == "systemctl start ssh.socket" and plan.rebinds
    assert "open sessions survive (KillMode=process)" in plan.reason


def test_socket_findings_use_the_loaded_socket_and_flag_an_extra_port() -> None:
    from sshd_setup.core.findings import find_problems

    desired = desired_from({"principals": [{"user": "root", "principal": "root"}]})
    files = {"/etc/ssh/sshd_config": "Port 22\n"}
    for listen, code in ((("[::]:2222",), "SOCKET-NO-PORT-22"), (("[::]:22", "[::]:2222"), "SOCKET-PORT-NOT-22")):
        facts = _rhel_socket_facts(listen)
        facts.files = {p: SnapshotEntry(t) for p, t in files.items()}
        facts.dirs = {"/etc/ssh"}
        found = [f for f in find_problems(desired, facts, None) if f.code.startswith("SOCKET-")]
        assert [f.code for f in found] == [code], found
        assert "sshd.socket" in found[0].message and found[0].severity.value == "error"


def test_start_options_from_the_unit_and_its_environment_file() -> None:
    from sshd_setup.core.startopts import running_options, start_findings

    facts = HostFacts(os_id="debian", init="systemd", units={"ssh.service": unit("ssh.service")})
    facts.unit_exec["ssh.service"] = ["/usr/sbin/sshd -D $SSHD_OPTS", "", "-/usr/sbin/sshd -D ${SSHD_OPTS} -f /etc/x"]
    facts.unit_env_files["ssh.service"] = ["-/etc/default/ssh"]
    facts.start_env["/etc/default/ssh"] = {"SSHD_OPTS": "\"-p 2222 -o 'TrustedUserCAKeys /etc/other.pub'\""}
    options = running_options(facts)
    assert options is not None and options.config == "/etc/x" and options.ports == (2222,)
    assert options.options == (("trustedusercakeys", "/etc/other.pub"),)
    codes = sorted(f.code for f in start_findings(options, "/etc/ssh/sshd_config"))
    assert codes == ["START-OPTION-CONFIG", "START-OPTION-OVERRIDES", "START-OPTION-PORT"]
    sysv = HostFacts(os_id="rhel", init="sysvinit", start_env={"/etc/sysconfig/sshd": {"OPTIONS": "-oPort=22"}})
    options = running_options(sysv)
    assert options is not None and options.options == (("port", "22"),)
    assert start_findings(options, "/etc/ssh/sshd_config") == []


def test_a_lock_held_by_another_run_is_a_fact() -> None:
    facts, _ = parse_facts("@@BEGIN 1\n@@LOCKED 20261201T000000Z-0ther1 4242 2026-12-01T00:00:00Z\n@@END\n")
    assert facts.locked_by == "20261201T000000Z-0ther1 4242 2026-12-01T00:00:00Z"
    free, _ = parse_facts("@@BEGIN 1\n@@END\n")
    assert free.locked_by == ""


def test_the_facts_script_reports_only_a_lock_that_is_really_held(tmp_path: Path) -> None:
    """facts.sh asks flock(1) when the lock file names a run: a dead run's line must not block anyone."""
    lock = tmp_path / "lock"
    script = facts_script(desired_from({}), "", lock=HostLock(str(lock), str(tmp_path / "unused")))
    lock.write_text("20261201T000000Z-0ther1 4242 2026-12-01T00:00:00Z\n")
    stale = subprocess.run(["sh", "-s"], input=script, capture_output=True, text=True, timeout=60).stdout
    assert "@@LOCKED" not in stale and "@@END" in stale
    holder = subprocess.Popen(["flock", str(lock), "sleep", "30"])
    try:
        for _ in range(100):  # until flock(1) holds it
            if subprocess.run(["flock", "-n", str(lock), "true"]).returncode != 0:
                break
            time.sleep(0.05)
        held = subprocess.run(["sh", "-s"], input=script, capture_output=True, text=True, timeout=60).stdout
    finally:
        holder.kill()
        holder.wait()
    assert "@@LOCKED 20261201T000000Z-0ther1 4242 2026-12-01T00:00:00Z" in held
