"""Real test hosts for sshd-setup: systemd-nspawn containers with real systemd and the distro's sshd.

    from tests.testhosts import Fleet, HostSpec

    with Fleet.up([HostSpec("deb1"), HostSpec("rhel1", flavour="rhel")]) as fleet:
        fleet.host("rhel1").run("systemctl reload sshd")

Command line: ``python -m tests.testhosts up|down|list|build`` (run from the repository root, as root).
"""

from tests.testhosts._paths import SUITES, cache_dir, state_dir
from tests.testhosts._system import HarnessError
from tests.testhosts.fleet import Fleet, Host, HostCommandError, HostSpec, down_all, list_fleet_states
from tests.testhosts.prereqs import missing_prerequisites
from tests.testhosts.rootfs import ensure_rootfs

__all__ = [
    "SUITES",
    "Fleet",
    "HarnessError",
    "Host",
    "HostCommandError",
    "HostSpec",
    "cache_dir",
    "down_all",
    "ensure_rootfs",
    "list_fleet_states",
    "missing_prerequisites",
    "state_dir",
]
