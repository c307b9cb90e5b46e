"""What is on a host, as gathered in one round trip (or read from a local tree): pure data, no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sshd_setup.core.tree import SnapshotEntry, SnapshotSource


@dataclass(frozen=True)
class FileMeta:
    path: str
    exists: bool
    owner: str = ""
    group: str = ""
    mode: int = 0
    is_dir: bool = False
    mtime: float = 0.0
    """Seconds since the epoch (0.0 = not known)."""


@dataclass(frozen=True)
class UnitState:
    """A systemd unit as `systemctl show` reports it."""

    name: str
    load_state: str = "not-found"
    """loaded / not-found / masked"""
    active_state: str = "inactive"
    unit_file_state: str = ""
    """enabled / disabled / static / alias / masked / ''"""
    listen: tuple[str, ...] = ()
    """Socket units: their Listen lines (e.g. '[::]:22 (Stream)')."""
    accept: str = ""
    """Socket units: 'yes' (one process per connection) / 'no' (the service takes the socket) / '' unknown."""
    kill_mode: str = ""
    """Services: systemd's KillMode ('process' keeps open sessions across a restart)."""
    need_daemon_reload: bool = False
    """Its unit files or drop-ins changed since systemd loaded them (what it does now is not what they say)."""
    dropin_paths: tuple[str, ...] = ()
    """The drop-ins systemd loaded for it (DropInPaths)."""

    @property
    def exists(self) -> bool:
        return self.load_state == "loaded"

    @property
    def active(self) -> bool:
        return self.active_state in ("active", "reloading", "activating")


@dataclass(frozen=True)
class UserInfo:
    name: str
    uid: int
    home: str
    groups: tuple[str, ...] = ()


@dataclass
class HostFacts:
    os_id: str = ""
    os_like: tuple[str, ...] = ()
    sshd_version_text: str = ""
    """e.g. 'OpenSSH_9.2p1 Debian-2+deb12u3'; '' when unknown (offline lint)."""
    init: str = "unknown"
    """systemd / openrc / sysvinit / unknown"""
    files: dict[str, SnapshotEntry] = field(default_factory=dict)
    """Config tree files (main + every Include), CA and principals files, keyed by absolute path."""
    dirs: set[str] = field(default_factory=set)
    meta: dict[str, FileMeta] = field(default_factory=dict)
    """Owner/mode of the CA file, principals files and their parent directories (those that exist)."""
    units: dict[str, UnitState] = field(default_factory=dict)
    """'ssh.service', 'sshd.service', 'ssh.socket', 'sshd.socket' (only those systemd knows)."""
    users: dict[str, UserInfo | None] = field(default_factory=dict)
    """Each user a mapping names: its passwd entry, or None when it does not exist."""
    links: dict[str, str] = field(default_factory=dict)
    """Files read that are symlinks → their resolved target (`readlink -f`)."""
    socket_dropins: dict[str, str] = field(default_factory=dict)
    """Drop-ins of ssh.socket (e.g. .../ssh.socket.d/addresses.conf) → their text."""
    pid_files: dict[str, bool] = field(default_factory=dict)
    """sshd pid files that exist → whether the pid they hold is a running process."""
    unit_exec: dict[str, list[str]] = field(default_factory=dict)
    """Service unit → its ExecStart= values in file order (unit file, then drop-ins; '' resets)."""
    unit_env_files: dict[str, list[str]] = field(default_factory=dict)
    """Service unit → its EnvironmentFile= values."""
    start_env: dict[str, dict[str, str]] = field(default_factory=dict)
    """/etc/default/ssh, /etc/sysconfig/sshd → their SSHD_OPTS / OPTIONS assignments (raw values)."""
    start_main: str = ""
    """The config file a `-f` in sshd's start options names ('' = none)."""
    addresses: frozenset[str] | None = None
    """The host's own IP addresses (gathered only when the config has a ListenAddress)."""
    login_user: str = ""
    """The user sshd-setup logs in as ('' when not known, e.g. offline lint or a local connection)."""
    pending_marker: str | None = None
    """sshd-setup's marker of files installed but not yet reloaded ('backup NAME' + sha256sum lines), if any."""
    locked_by: str = ""
    """The "RUN PID TIME" of another sshd-setup run holding the host's lock while the facts were read."""
    complete: bool = True
    """False for offline facts (lint --root): checks that need units/users/versions are skipped."""

    def apply_os_release(self, text: str) -> None:
        """Take ID and ID_LIKE from the text of an os-release file."""
        values: dict[str, str] = {}
        for raw in text.splitlines():
            key, sep, value = raw.partition("=")
            if sep:
                values[key.strip()] = value.strip().strip('"').strip("'")
        self.os_id = values.get("ID", "")
        self.os_like = tuple(values.get("ID_LIKE", "").split())

    def source(self) -> SnapshotSource:
        return SnapshotSource(dict(self.files), set(self.dirs))

    @property
    def sshd_version(self) -> tuple[int, int] | None:
        match = re.search(r"OpenSSH_(\d+)\.(\d+)", self.sshd_version_text)
        return (int(match.group(1)), int(match.group(2))) if match else None

    @property
    def socket_unit(self) -> UnitState | None:
        """The ssh.socket or sshd.socket that is loaded and enabled or active (a 'not-found' entry never
        counts: systemctl reports one for every name it was asked about)."""
        for name in ("ssh.socket", "sshd.socket"):
            unit = self.units.get(name)
            if unit is not None and unit.exists and (unit.active or unit.unit_file_state == "enabled"):
                return unit
        return None

    @property
    def socket_activated(self) -> bool:
        """An ssh socket unit listens for sshd (Ubuntu >= 22.10, Debian's ssh.socket, RHEL's sshd.socket)."""
        return self.socket_unit is not None

    def is_family(self, *names: str) -> bool:
        return self.os_id in names or any(like in names for like in self.os_like)
