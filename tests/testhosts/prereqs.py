"""Can this machine boot test hosts? Returns reasons when it cannot (never raises)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.testhosts._system import cgroup_roots

REQUIRED_TOOLS = ("systemd-nspawn", "debootstrap", "ssh", "ssh-keygen", "ip", "mount", "umount", "nsenter")


def missing_prerequisites() -> list[str]:
    """Human-readable reasons why integration tests cannot run here; empty when all is in place."""
    reasons = []
    if os.geteuid() != 0:
        return ["not running as root (test hosts need root: mounts, bridges, systemd-nspawn)"]
    tools = [t for t in REQUIRED_TOOLS if shutil.which(t) is None]
    if tools:
        reasons.append(f"missing tools: {', '.join(tools)} (run scripts/testhosts-prereqs.sh)")
    if "overlay" not in Path("/proc/filesystems").read_text():
        reasons.append("the kernel offers no overlay filesystem")
    if not cgroup_roots():
        reasons.append("no systemd or unified cgroup hierarchy under /sys/fs/cgroup")
    if shutil.which("unshare"):
        probe = subprocess.run(["unshare", "--net", "true"], capture_output=True, text=True, check=False)
        if probe.returncode != 0:
            reasons.append(f"cannot create network namespaces: {probe.stderr.strip()}")
    else:
        reasons.append("missing tool: unshare")
    return reasons
