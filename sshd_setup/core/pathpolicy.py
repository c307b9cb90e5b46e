"""The managed-path policy: where sshd-setup may write, and what it may overwrite there. Pure, no I/O.

Checked twice: on the inventory before any host is contacted (paths as written), and on each host against
what is really there (symlink targets, the kind and content of an existing file).

- The CA file and principals files live under /etc/ssh, or under a directory the operator names in
  `sshd_setup.managed_dirs`. Never sshd's or ssh's own files (sshd_config, ssh_config, their .d drop-ins,
  host keys, moduli, known hosts), never under /proc, /sys, /dev or /run, never a system file.
- `sshd_config` is a file named sshd_config (or sshd_config-NAME / sshd_config_NAME / sshd_config.NAME,
  a second instance) in /etc/ssh, /usr/etc/ssh, /usr/local/etc/ssh, /etc/openssh or a managed_dirs one.
- An existing CA file is overwritten only when it is ours (our header) or a plain list of keys; an
  existing principals file only when it is ours or a plain list of principal names.
"""

from __future__ import annotations

import posixpath
import re

from sshd_setup.core.names import check_path, check_principal
from sshd_setup.core.sshkeys import InvalidKey, parse_public_key

SSH_DIR = "/etc/ssh"
SSHD_CONFIG_DIRS = ("/etc/ssh", "/usr/etc/ssh", "/usr/local/etc/ssh", "/etc/openssh")
CA_HEADER = "# Managed by sshd-setup: certificate authorities"
PRINCIPALS_HEADER = "# Managed by sshd-setup: certificate principals"

_VIRTUAL = ("/proc", "/sys", "/dev", "/run", "/var/run")
_SYSTEM_FILES = frozenset(
    {
        "/etc/passwd",
        "/etc/shadow",
        "/etc/group",
        "/etc/gshadow",
        "/etc/sudoers",
        "/etc/hosts",
        "/etc/fstab",
        "/etc/crontab",
        "/etc/profile",
        "/etc/environment",
        "/etc/ld.so.preload",
        "/etc/ld.so.conf",
        "/etc/login.defs",
        "/etc/securetty",
        "/etc/nsswitch.conf",
        "/etc/resolv.conf",
        "/etc/doas.conf",
        "/etc/subuid",
        "/etc/subgid",
    }
)
# Directories whose files the system executes or trusts: never a managed directory, nor inside one.
_SYSTEM_DIRS = (
    "/etc/sudoers.d",
    "/etc/pam.d",
    "/etc/security",
    "/etc/systemd",
    "/etc/init.d",
    "/etc/profile.d",
    "/etc/ld.so.conf.d",
    "/etc/sysctl.d",
    "/etc/modprobe.d",
    "/etc/udev",
    "/etc/apt",
    "/etc/yum.repos.d",
    "/etc/polkit-1",
    "/etc/default",
    "/etc/sysconfig",
    "/etc/logrotate.d",
    "/etc/update-motd.d",
    "/etc/ssl",
    "/etc/pki",
    "/etc/selinux",
    "/var/spool/cron",
    "/root",
    "/boot",
    "/bin",
    "/sbin",
    "/lib",
    "/lib64",
    "/usr",
)
_CRON_OR_RC = re.compile(r"/etc/(cron\.[^/]+|rc[^/]*\.d)(/|$)")
# sshd's and ssh's own files in an ssh directory (any of SSHD_CONFIG_DIRS or a managed one).
_SSH_OWN = re.compile(r"(sshd?_config(\.d)?|moduli|ssh_known_hosts2?|shosts\.equiv|sshrc|ssh_revoked_keys|ssh_host_.*)")
_SSHD_CONFIG_NAME = re.compile(r"sshd_config([-_.][A-Za-z0-9_.-]+)?")
_STAGING = (".sshd-setup-new", ".sshd-setup-rb")


def _under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def _system_area(path: str) -> str | None:
    """Why `path` is off limits whatever the inventory says, or None."""
    for area in _VIRTUAL:
        if _under(path, area):
            return f"is under {area} (not a real file)"
    if path in _SYSTEM_FILES:
        return "is a system file"
    for area in _SYSTEM_DIRS:
        if _under(path, area):
            return f"is under {area}, whose files the system executes or trusts"
    if _CRON_OR_RC.match(path):
        return "is under a cron or init directory"
    return None


def check_managed_dir(directory: str) -> str | None:
    """A directory an operator names in managed_dirs: absolute, at least two levels deep, no system area."""
    problem = check_path(directory, "managed directory")
    if problem:
        return problem
    if directory.count("/") < 2:
        return f"managed directory {directory} is a top-level directory: name one of its own (e.g. {directory}/ssh-ca)"
    area = None if any(_under(directory, d) for d in SSHD_CONFIG_DIRS) else _system_area(directory)
    if area:
        return f"managed directory {directory} {area}"
    if any(_under(directory, d) and directory != d for d in SSHD_CONFIG_DIRS):
        base = posixpath.basename(directory)
        if _SSH_OWN.fullmatch(base):
            return f"managed directory {directory} is sshd's own drop-in directory"
    return None


def managed_file_problem(path: str, what: str, managed_dirs: tuple[str, ...] = ()) -> str | None:
    """None when sshd-setup may write the CA file / a principals file at `path`, else a one-line reason."""
    problem = check_path(path, what)
    if problem:
        return problem
    area = None if any(_under(path, d) for d in SSHD_CONFIG_DIRS) else _system_area(path)
    if area:
        return f"{what} {path} {area}; sshd-setup writes only under {_dirs_text(managed_dirs)}"
    roots = (SSH_DIR, *managed_dirs)
    parent = posixpath.dirname(path)
    if not any(_under(parent, root) for root in roots):
        return (
            f"{what} {path} is outside {_dirs_text(managed_dirs)}; "
            "name its directory in sshd_setup.managed_dirs to allow it"
        )
    for piece in path.split("/")[2:]:
        if _SSH_OWN.fullmatch(piece):
            return f"{what} {path} is one of sshd's or ssh's own files ({piece}), never a file sshd-setup manages"
    if path.endswith(_STAGING):
        return f"{what} {path} ends like sshd-setup's own staging files"
    return None


def sshd_config_problem(path: str, managed_dirs: tuple[str, ...] = ()) -> str | None:
    """None when `path` may be sshd's main configuration file, else a one-line reason."""
    problem = check_path(path, "sshd_config")
    if problem:
        return problem
    name = posixpath.basename(path)
    if not _SSHD_CONFIG_NAME.fullmatch(name) or name.endswith(".d") or name.endswith(_STAGING):
        return f"sshd_config {path} is not named sshd_config (or sshd_config-NAME for a second instance)"
    parent = posixpath.dirname(path)
    if parent not in (*SSHD_CONFIG_DIRS, *managed_dirs):
        return (
            f"sshd_config {path} is not in {', '.join(SSHD_CONFIG_DIRS)}; "
            "name its directory in sshd_setup.managed_dirs to allow it"
        )
    return None


def _dirs_text(managed_dirs: tuple[str, ...]) -> str:
    return " or ".join((SSH_DIR, *managed_dirs))


def existing_ca_file_problem(text: str) -> str | None:
    """None when an existing CA file may be replaced (ours, or a plain list of keys). Never quotes content."""
    if text.startswith(CA_HEADER):
        return None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            parse_public_key(stripped)
        except InvalidKey:
            return f"line {number} is not an SSH public key"
    return None


def existing_principals_file_problem(text: str) -> str | None:
    """None when an existing principals file may be replaced (ours, or a plain list of principal names)."""
    if text.startswith(PRINCIPALS_HEADER):
        return None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if check_principal(stripped) is not None:
            return f"line {number} is not a principal name"
    return None


def is_our_principals_file(text: str) -> bool:
    return text.startswith(PRINCIPALS_HEADER)
