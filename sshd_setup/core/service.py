"""How to reload sshd on a host, decided from its facts (pure).

Reload (SIGHUP), never restart: existing sessions survive. Debian/Ubuntu name the unit `ssh`; the RHEL
family, Fedora, SUSE, Arch and Amazon name it `sshd`. Ubuntu's socket activation needs no reload while
ssh.service is inactive: the next connection starts sshd with the new file.
"""

from __future__ import annotations

from dataclasses import dataclass

from sshd_setup.core.facts import HostFacts
from sshd_setup.core.tree import ConfigTree

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
        socket = f"{unit}.socket"
        service_state = facts.units.get(service)
        if facts.socket_activated and not (service_state and service_state.active):
            return ServicePlan(
                "systemd",
                unit,
                f"if systemctl is-active --quiet {service}; then systemctl reload {service}; fi",
                f"systemctl is-active --quiet {socket}",
                f"systemctl start {socket}",
                f"{socket} is listening and {service} is inactive: the next connection reads the new file",
                rebinds=False,
            )
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


def pid_file(tree: ConfigTree) -> str:
    """sshd's PidFile as the apply script watches it: '' = the built-in place (/run/sshd.pid or
    /var/run/sshd.pid), 'none' = nothing to watch (none set, or a value that is not a plain absolute path)."""
    value = tree.effective_value("pidfile", default="")
    return value if value in ("", "none") or value.startswith("/") else "none"
