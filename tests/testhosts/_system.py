"""Low-level Linux helpers for the test-host harness: processes, mounts, links, cgroups, locks.

Everything here acts on the machine running the tests (as root) and only on objects the harness
created itself: callers pass the PIDs, paths and link names they recorded.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_GROUP = "sshd-setup-testhosts"


class HarnessError(RuntimeError):
    """The harness could not do what it was asked (build, boot, stop)."""


def sh(argv: Sequence[str | os.PathLike[str]], *, check: bool = True, timeout: float = 120) -> str:
    """Run a local command, return its stdout; raise HarnessError with stderr on failure."""
    proc = subprocess.run(
        [os.fspath(a) for a in argv],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        cmd = " ".join(os.fspath(a) for a in argv)
        raise HarnessError(f"{cmd!r} failed (rc {proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Exclusive advisory lock on PATH (created if missing); released on exit, even on errors."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write_atomic(path: Path, data: str | bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    raw = data.encode() if isinstance(data, str) else data
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, raw)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    os.replace(tmp, path)


# --- processes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcStat:
    pid: int
    comm: str
    state: str
    ppid: int
    starttime: int


def proc_stat(pid: int) -> ProcStat | None:
    """/proc/PID/stat parsed, or None when there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    except OSError as exc:
        if exc.errno == errno.ESRCH:
            return None
        raise
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    rest = raw[raw.rindex(")") + 2 :].split()
    # rest[0] is field 3 (state); starttime is field 22.
    return ProcStat(pid=pid, comm=comm, state=rest[0], ppid=int(rest[1]), starttime=int(rest[19]))


def is_alive(pid: int, starttime: int | None = None) -> bool:
    """True if PID runs and is the same process (same start time). Zombies count as dead."""
    st = proc_stat(pid)
    if st is None or st.state in ("Z", "X", "x"):
        return False
    return starttime is None or st.starttime == starttime


def all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def children_of(pid: int) -> list[int]:
    out = []
    for p in all_pids():
        st = proc_stat(p)
        if st is not None and st.ppid == pid:
            out.append(p)
    return out


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def signal_pid(pid: int, sig: int, starttime: int | None = None) -> bool:
    """Send SIG to PID only if it is still the process we started; True if sent."""
    if not is_alive(pid, starttime):
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def reap(pid: int) -> None:
    """Collect PID if it is our (dead) child; harmless otherwise."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def wait_dead(pids: dict[int, int | None], deadline: float) -> list[int]:
    """Wait until every PID (pid -> starttime) is dead or DEADLINE (monotonic); return survivors."""
    while True:
        for pid in pids:
            reap(pid)
        alive = [p for p, st in pids.items() if is_alive(p, st)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.1)


def kill_hard(pid: int, starttime: int | None = None) -> None:
    signal_pid(pid, signal.SIGKILL, starttime)


# --- mounts ------------------------------------------------------------------------------------


def _unescape_mount(field: str) -> str:
    return field.encode().decode("unicode_escape") if "\\" in field else field


def mountpoints() -> list[str]:
    """Mount points of this mount namespace, in mount order."""
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if len(fields) > 4:
            points.append(_unescape_mount(fields[4]))
    return points


def mounts_with_options() -> list[tuple[str, str, str]]:
    """(mount point, fs type, super options) for every mount."""
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        lf, rf = left.split(), right.split()
        if len(lf) > 4 and len(rf) >= 3:
            out.append((_unescape_mount(lf[4]), rf[0], rf[2]))
    return out


def mounts_under(path: Path) -> list[str]:
    base = os.fspath(path).rstrip("/")
    return [m for m in mountpoints() if m == base or m.startswith(base + "/")]


def unmount_all_under(path: Path) -> None:
    """Unmount everything mounted at or under PATH, deepest first; lazy unmount as a last resort."""
    for _attempt in range(3):
        points = sorted(set(mounts_under(path)), key=len, reverse=True)
        if not points:
            return
        for mp in points:
            sh(["umount", mp], check=False, timeout=30)
        if not mounts_under(path):
            return
        time.sleep(0.2)
    for mp in sorted(set(mounts_under(path)), key=len, reverse=True):
        sh(["umount", "--lazy", mp], check=False, timeout=30)
    left = mounts_under(path)
    if left:
        raise HarnessError(f"could not unmount {left}")


# --- network links -----------------------------------------------------------------------------


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def links() -> list[str]:
    return sorted(os.listdir("/sys/class/net"))


def ipv4_addresses() -> list[str]:
    """Every IPv4 address/prefix configured on this machine, e.g. '10.231.3.1/24'."""
    out = sh(["ip", "-4", "-o", "addr", "show"], check=False)
    return [f.split()[3] for f in out.splitlines() if len(f.split()) > 3]


def ipv4_routes() -> list[str]:
    return [line.split()[0] for line in sh(["ip", "-4", "route", "show"], check=False).splitlines() if line]


def sysctl_at_least(key: str, value: int, record: Path | None = None) -> None:
    """Raise a numeric sysctl to VALUE if it is lower (never lowers it); RECORD keeps the value it had."""
    path = Path("/proc/sys", *key.split("."))
    current = int(path.read_text().split()[0])
    if current < value:
        if record is not None:
            saved = json.loads(record.read_text()) if record.exists() else {}
            saved.setdefault(key, current)
            record.write_text(json.dumps(saved))
        path.write_text(f"{value}\n")


def restore_sysctls(record: Path) -> None:
    """Put back the values sysctl_at_least() recorded (live values only: nothing was ever persisted)."""
    if not record.exists():
        return
    for key, value in json.loads(record.read_text()).items():
        Path("/proc/sys", *key.split(".")).write_text(f"{value}\n")
    record.unlink()


# --- cgroups -----------------------------------------------------------------------------------


def cgroup_roots() -> list[Path]:
    """The hierarchies a container's systemd uses: name=systemd (v1) and/or the unified (v2) one."""
    if (CGROUP_ROOT / "cgroup.controllers").exists():  # pure cgroup v2
        return [CGROUP_ROOT]
    roots = []
    for name in ("systemd", "unified"):
        p = CGROUP_ROOT / name
        if (p / "cgroup.procs").exists():
            roots.append(p)
    return roots


def remove_cgroup_tree(path: Path, attempts: int = 30) -> bool:
    """rmdir PATH and everything below it (cgroups only hold control files); True when gone."""
    for _ in range(attempts):
        if not path.exists():
            return True
        for dirpath, _dirs, _files in os.walk(path, topdown=False):
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)
        if not path.exists():
            return True
        time.sleep(0.1)
    return not path.exists()


def cgroup_pids(path: Path) -> list[int]:
    """PIDs in PATH and its descendants."""
    pids: list[int] = []
    for dirpath, _dirs, files in os.walk(path):
        if "cgroup.procs" in files:
            with contextlib.suppress(OSError):
                pids += [int(x) for x in Path(dirpath, "cgroup.procs").read_text().split()]
    return pids
