"""How to reload sshd on a host, decided from its facts (pure).

Reload (SIGHUP), never restart: existing sessions survive. Debian/Ubuntu name the unit `ssh`; the RHEL
family, Fedora, SUSE, Arch and Amazon name it `sshd`. A per-connection socket (Accept=yes: RHEL's
sshd.socket) needs no reload: every connection starts its own `sshd -i`. A socket that hands itself to the
service (Accept=no: Debian's and Ubuntu's ssh.socket) needs a restart of the service, never a reload.
"""

from __future__ import annotations

from dataclasses import dataclass

from sshd_setup.core.facts import HostFacts, UnitState
from sshd_setup.core.tree import ConfigTree

SYSTEMD_UNIT_DIRS = (
    "/etc/systemd/system",
    "/run/systemd/system",
    "/run/systemd/generator",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
    "/run/systemd/generator.late",
)
"""systemd's unit search path, first wins; UNIT.d/*.conf drop-ins in each (a name higher up hides one below).
Both gatherers use it: the facts script (its UNIT_DIRS header) and the offline one (sshd_setup/offline.py)."""

DEBIAN_FAMILY = ("debian", "ubuntu", "raspbian", "linuxmint", "pop")


@dataclass(frozen=True)
class ServicePlan:
    manager: str
    unit: str
    reload: str
    """Shell command that reloads sshd (may be a conditional that does nothing, see reason)."""
    check: str
    """Exits 0 when sshd (or its socket) is up."""
    start: str
    """Starts sshd again; used only by rollback when sshd died."""
    reason: str
    rebinds: bool = True
    """The reload makes sshd re-execute and bind its listening sockets anew (not so under socket activation)."""


def service_plan(facts: HostFacts) -> ServicePlan:
    debian_like = facts.is_family(*DEBIAN_FAMILY)
    if facts.init == "systemd":
        if facts.units.get("ssh.service", None) and facts.units["ssh.service"].exists:
            unit = "ssh"
        elif facts.units.get("sshd.service", None) and facts.units["sshd.service"].exists:
            unit = "sshd"
        else:
            unit = "ssh" if debian_like else "sshd"
        service = f"{unit}.service"
        socket_unit = facts.socket_unit
        if socket_unit is not None:
            return _socket_plan(facts, socket_unit.name.removesuffix(".socket"))
        return ServicePlan(
            "systemd",
            unit,
            f"systemctl reload {service}",
            f"systemctl is-active --quiet {service}",
            f"systemctl start {service}",
            f"systemctl reload {service}",
        )
    if facts.init == "openrc":
        return ServicePlan(
            "openrc",
            "sshd",
            "rc-service sshd reload",
            "rc-service sshd status >/dev/null 2>&1",
            "rc-service sshd start",
            "rc-service sshd reload",
        )
    name = "ssh" if debian_like else "sshd"
    return ServicePlan(
        "sysvinit",
        name,
        f"service {name} reload",
        f"service {name} status >/dev/null 2>&1",
        f"service {name} start",
        f"service {name} reload",
    )


def _socket_plan(facts: HostFacts, unit: str) -> ServicePlan:
    """An ssh socket unit listens. Never start the service: on RHEL sshd.socket has Conflicts=sshd.service,
    so starting the service stops the socket (and a socket that listens on another port than sshd_config
    says would be gone). Bring the socket back instead."""
    service, socket = f"{unit}.service", f"{unit}.socket"
    state = facts.units.get(socket)
    check, start = f"systemctl is-active --quiet {socket}", f"systemctl start {socket}"
    if state is not None and state.accept == "no":
        # The socket hands its listening socket to the service (LISTEN_FDS). On SIGHUP sshd re-executes and
        # binds port 22 itself, which the socket holds: it exits (measured on Debian 12 and 13). A restart
        # of the service keeps the socket (systemd owns it) and, with KillMode=process, open sessions.
        kill_mode = (facts.units.get(service) or UnitState(service)).kill_mode
        sessions = (
            "open sessions survive (KillMode=process)"
            if kill_mode == "process"
            else (f"KillMode={kill_mode or 'unknown'}: open sessions may be closed")
        )
        return ServicePlan(
            "systemd",
            unit,
            f"if systemctl is-active --quiet {service}; then systemctl restart {service}; fi",
            check,
            start,
            f"{socket} (Accept=no) hands its socket to {service}: a reload would make sshd re-execute and try "
            f"to bind the port itself, so {service} is restarted (systemd keeps the socket; {sessions})",
        )
    return ServicePlan(
        "systemd",
        unit,
        f"if systemctl is-active --quiet {service}; then systemctl reload {service}; fi",
        check,
        start,
        f"{socket} is listening and runs one sshd per connection: the next connection reads the new file",
        rebinds=False,
    )


def pid_file(tree: ConfigTree) -> str:
    """sshd's PidFile as the apply script watches it: '' = the built-in place (/run/sshd.pid or
    /var/run/sshd.pid), 'none' = nothing to watch (none set, or a value that is not a plain absolute path)."""
    value = tree.effective_value("pidfile", default="")
    return value if value in ("", "none") or value.startswith("/") else "none"
