"""~/.ssh/config and /etc/ssh/ssh_config as ssh reads them, for paramiko (which does not follow Include).

The user's file comes first, then the system's: ssh keeps the first value it obtains, and so does
paramiko's lookup. `Include` lines are replaced by the files they name (globs; relative names from
~/.ssh or /etc/ssh), and after each included file the enclosing `Host`/`Match` line is repeated (or
`Host *` at the top), so that, as in ssh, a Host line inside an included file does not change what
follows the Include. Without this, a ProxyJump in an included file would be silently skipped and the
host reached directly.
"""

from __future__ import annotations

import glob
import os
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from sshd_setup.errors import InputError

if TYPE_CHECKING:
    from paramiko import SSHConfig

USER_CONFIG = "~/.ssh/config"
SYSTEM_CONFIG = "/etc/ssh/ssh_config"
_MAX_DEPTH = 16
_PROXY_WORDS = re.compile(r"^\s*(proxyjump|proxycommand)\b", re.I | re.M)
_cache: dict[tuple[str, ...], tuple[str, SSHConfig | None]] = {}
_lock = threading.Lock()


def _expanded(file: Path, base: Path, depth: int) -> str:
    if depth > _MAX_DEPTH:
        raise InputError(str(file), "Include nested too deeply (a loop?)")
    try:
        text = file.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(str(file), f"cannot read: {exc.strerror or exc}") from None
    lines: list[str] = []
    condition = "Host *"
    for line in text.splitlines():
        words = line.strip().replace("=", " ", 1).split()
        keyword = words[0].lower() if words else ""
        if keyword in ("host", "match"):
            condition = line.strip()
        if keyword != "include":
            lines.append(line)
            continue
        for pattern in words[1:]:
            pattern = os.path.expanduser(pattern)
            full = pattern if os.path.isabs(pattern) else str(base / pattern)
            for name in sorted(glob.glob(full)):
                if Path(name).is_file():
                    lines.append(_expanded(Path(name), base, depth + 1))
        lines.append(condition)
    return "\n".join(lines)


def config_text() -> str:
    """The user's then the system's ssh_config, Includes expanded ('' when neither exists)."""
    user = Path(os.path.expanduser(USER_CONFIG))
    parts = []
    for file, base in ((user, user.parent), (Path(SYSTEM_CONFIG), Path(SYSTEM_CONFIG).parent)):
        if file.is_file():
            parts.append(_expanded(file, base, 0))
            parts.append("Host *")
    return "\n".join(parts)


def _key() -> tuple[str, ...]:
    key = [os.path.expanduser(USER_CONFIG)]
    for name in (key[0], SYSTEM_CONFIG):
        try:
            key.append(str(os.stat(name).st_mtime_ns))
        except OSError:
            key.append("-")
    return tuple(key)


def mentions_proxy() -> bool:
    """True when any ssh_config line (Includes followed) sets ProxyJump or ProxyCommand. No paramiko import."""
    key = _key()
    with _lock:
        if key not in _cache:
            _cache[key] = (config_text(), None)
        text = _cache[key][0]
    return bool(_PROXY_WORDS.search(text))


def ssh_config() -> SSHConfig:
    """The parsed configuration, once per process (per file change)."""
    from paramiko import SSHConfig

    key = _key()
    with _lock:
        text, parsed = _cache.get(key, ("", None))
        if parsed is None:
            text = text or config_text()
            try:
                parsed = SSHConfig.from_text(text)
            except Exception as exc:  # paramiko's parser raises ConfigParseError and others
                raise InputError(USER_CONFIG, f"cannot read the ssh configuration: {exc}") from None
            _cache[key] = (text, parsed)
    return parsed
