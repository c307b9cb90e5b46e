"""Cached Debian base root filesystems built with debootstrap, one per suite.

Layout under the cache dir: ``<suite>-<recipe>/root`` is the tree, ``<suite>-<recipe>/READY`` the
marker written last. A directory without the marker is a half-built leftover and is rebuilt. The
recipe id changes whenever the recipe below changes, so a new recipe never rewrites a tree that a
running fleet still uses as its overlay's lower layer. Builders of one suite are serialised by a
file lock, so parallel sessions build once and share the result.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.testhosts._paths import SUITES, cache_dir
from tests.testhosts._system import HarnessError, file_lock, sh, unmount_all_under, write_atomic

PACKAGES = ("systemd", "systemd-sysv", "dbus", "openssh-server", "python3", "iproute2", "sudo", "procps")

#: Units that only add noise, delay or risk inside a test container.
MASKED_UNITS = (
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "apt-daily.service",
    "apt-daily-upgrade.service",
    "e2scrub_all.timer",
    "fstrim.timer",
    "getty@.service",
    "getty.target",
    "console-getty.service",
    "serial-getty@.service",
    "systemd-firstboot.service",
    "systemd-timesyncd.service",
    "systemd-networkd-wait-online.service",
    "systemd-resolved.service",
)
ENABLED_UNITS = ("systemd-networkd.service",)

#: Bump when the customisation below changes in a way the package list does not show.
RECIPE_REVISION = "1"


def recipe_id() -> str:
    text = "\n".join([RECIPE_REVISION, *PACKAGES, *MASKED_UNITS, *ENABLED_UNITS])
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def base_dir(suite: str) -> Path:
    return cache_dir() / f"{suite}-{recipe_id()}"


def is_ready(suite: str) -> bool:
    return (base_dir(suite) / "READY").is_file()


def ensure_rootfs(suite: str, *, log: bool = True) -> Path:
    """Return the root of SUITE's cached base tree, building it first if needed (idempotent)."""
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; known: {', '.join(SUITES)}")
    top = base_dir(suite)
    root = top / "root"
    if (top / "READY").is_file():
        return root
    with file_lock(cache_dir() / f"{suite}.lock"):
        if (top / "READY").is_file():  # another builder finished while we waited
            return root
        if top.exists():  # half-built: start over, but never delete through a mount (proc, sys, dev)
            unmount_all_under(top)
            shutil.rmtree(top)
        top.mkdir(parents=True)
        started = time.monotonic()
        if log:
            print(f"testhosts: building {suite} base rootfs in {top} (about a minute)...", file=sys.stderr)
        try:
            _debootstrap(suite, root, top / "debootstrap.log")
        finally:
            unmount_all_under(root)  # an interrupted debootstrap leaves proc/sys mounted inside
        _customise(root)
        seconds = time.monotonic() - started
        write_atomic(top / "READY", f"suite={suite}\nrecipe={recipe_id()}\nbuild_seconds={seconds:.1f}\n")
        if log:
            print(f"testhosts: {suite} base rootfs ready in {seconds:.0f} s", file=sys.stderr)
    return root


def build_seconds(suite: str) -> float | None:
    """How long the cached tree took to build (from its marker), if it is built."""
    marker = base_dir(suite) / "READY"
    if not marker.is_file():
        return None
    for line in marker.read_text().splitlines():
        if line.startswith("build_seconds="):
            return float(line.split("=", 1)[1])
    return None


def _debootstrap(suite: str, root: Path, logfile: Path) -> None:
    # No mirror argument on purpose: debootstrap's own default is used.
    argv = ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", suite, str(root)]
    with open(logfile, "w") as out:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        tail = logfile.read_text(errors="replace").splitlines()[-15:]
        raise HarnessError(f"debootstrap {suite} failed (rc {proc.returncode}):\n" + "\n".join(tail))


def _customise(root: Path) -> None:
    etc = root / "etc"
    # Every host gets its own host keys at boot time; none may be shared through the base.
    for key in (etc / "ssh").glob("ssh_host_*"):
        key.unlink()
    # Empty machine-id: each container's systemd makes up its own.
    (etc / "machine-id").write_text("")
    dbus_id = root / "var/lib/dbus/machine-id"
    if dbus_id.is_file() and not dbus_id.is_symlink():
        dbus_id.unlink()
    # debootstrap copied this machine's resolver settings; hosts have no route to any resolver.
    (etc / "resolv.conf").unlink(missing_ok=True)
    (etc / "resolv.conf").write_text("")
    (etc / "hostname").write_text("localhost\n")
    sh(["systemctl", f"--root={root}", "enable", *ENABLED_UNITS])
    sh(["systemctl", f"--root={root}", "mask", *MASKED_UNITS])
    # Package caches only take space; the hosts never install anything.
    for sub in ("var/cache/apt/archives", "var/lib/apt/lists"):
        d = root / sub
        for f in d.glob("*") if d.is_dir() else []:
            if f.is_file():
                f.unlink()
    os.sync()
