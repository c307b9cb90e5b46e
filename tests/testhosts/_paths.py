"""Where the harness keeps its cache (base root filesystems) and its runtime state."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_CACHE = Path("/var/cache/sshd-setup-testhosts")
DEFAULT_STATE = Path("/run/sshd-setup-testhosts")

#: Debian suites the harness can build, with the OpenSSH each one ships.
SUITES: dict[str, str] = {"bookworm": "9.2", "trixie": "10.0", "bullseye": "8.4"}
DEFAULT_SUITE = "bookworm"


def cache_dir() -> Path:
    """Base rootfs cache; survives clean clones. Env SSHD_SETUP_TESTHOSTS_CACHE overrides."""
    return Path(os.environ.get("SSHD_SETUP_TESTHOSTS_CACHE") or DEFAULT_CACHE)


def state_dir() -> Path:
    """Runtime state of live fleets (what `down --all` reads). Env SSHD_SETUP_TESTHOSTS_STATE overrides."""
    return Path(os.environ.get("SSHD_SETUP_TESTHOSTS_STATE") or DEFAULT_STATE)
