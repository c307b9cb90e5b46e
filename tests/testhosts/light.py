"""Light test hosts for scale runs: hundreds of real sshd servers on one 2-core machine.

One light host = a network namespace ``sl<K>h<N>`` (a veth on bridge ``slbr<K>``, address in 10.(240+K).0.0/16,
this machine at .0.1) in which a private mount namespace runs THIS machine's ``/usr/sbin/sshd -D``:
overlays on /etc and /var (per-host upper dirs, so every write sshd-setup makes stays in the host), tmpfs
on /run, /root and /tmp. SSH sessions are sshd's children, so they see the host's private files. There is
no systemd: sshd-setup sees a sysvinit host and reloads with ``service ssh reload``, i.e. Debian's real
/etc/init.d/ssh, which runs ``sshd -t`` and sends SIGHUP to the sshd in /run/sshd.pid (a real re-exec).
About 2-4 MiB and a few ms of CPU to start each.

What it does NOT model, compared with the systemd-nspawn hosts (tests/testhosts/fleet.py): no systemd
(no unit files, no socket activation, no journald, no ``systemctl reload`` and its ExecReload), one OpenSSH
version (this machine's), shared host keys and package files (the lower layers are this machine's), no
PAM session in a real login manager, no per-host kernel or clock. It is for measuring how cost grows with
the number of hosts, not for service-manager behaviour.

    with LightFleet.up(200) as fleet:       # root; fleet.inventory_path, fleet.hosts, fleet.cpu_seconds()
        ...
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import yaml

from tests.testhosts._paths import state_dir
from tests.testhosts._system import cgroup_roots, file_lock, remove_cgroup_tree, restore_sysctls, sysctl_at_least

#: Users every light host has (the mapped users of the benchmarks), appended to its private passwd.
USERS = ("johndoe", "vmuser", "ops")
MAX_HOSTS = 1000  # a Linux bridge takes 1024 ports
NEIGHBOUR_SYSCTL_RECORD = "light-sysctl-before.json"
"""In the state dir: the ARP table limits as they were before a large light fleet raised them."""
_FIRST_UID = 3001

# Runs inside the host's new mount namespace (already inside its network namespace), then becomes sshd.
_HOST_INIT = """set -e
h=$1
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$h/etc.u,workdir=$h/etc.w" /etc
mount -t overlay overlay -o "lowerdir=/var,upperdir=$h/var.u,workdir=$h/var.w" /var
mount -t tmpfs -o mode=0755,size=16m light-run /run
mkdir -m 0755 /run/sshd
mount -t tmpfs -o mode=0700,size=4m light-root /root
mkdir -m 0700 /root/.ssh
cp "$h/authorized_keys" /root/.ssh/authorized_keys
mount -t tmpfs -o mode=1777,size=16m light-tmp /tmp
exec /usr/sbin/sshd -D -E "$h/sshd.log"
"""


class LightHostError(RuntimeError):
    """The light fleet could not be booted or stopped."""


def missing_prerequisites() -> list[str]:
    """Why light hosts cannot run here (empty when they can)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("not root")
    for tool in ("ip", "nsenter", "unshare", "ssh-keygen", "/usr/sbin/sshd", "/etc/init.d/ssh"):
        if shutil.which(tool) is None and not Path(tool).exists():
            missing.append(f"{tool} missing")
    if "overlay" not in Path("/proc/filesystems").read_text():
        missing.append("no overlay filesystem")
    return missing


@dataclass
class LightHost:
    name: str
    address: str
    netns: str
    dir: Path
    pid: int = 0

    @property
    def log(self) -> Path:
        """sshd's own log (-E): logins and reloads, readable from outside."""
        return self.dir / "sshd.log"

    def sighup_count(self) -> int:
        return _count(self.log, "Received SIGHUP")

    def login_count(self) -> int:
        return _count(self.log, "Accepted publickey for ")

    def file(self, path: str) -> Path:
        """Where the host's /etc or /var file PATH lies when the host changed it (the overlay's upper dir)."""
        top, _, rest = path.lstrip("/").partition("/")
        return self.dir / f"{top}.u" / rest

    def run(self, command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """COMMAND as root inside the host's namespaces (not over SSH: counts as no login)."""
        argv = ["nsenter", f"--target={self.pid}", "--mount", "--net", "sh", "-c", command]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def _count(path: Path, needle: str) -> int:
    try:
        return path.read_text(errors="replace").count(needle)
    except OSError:
        return 0


@dataclass
class LightFleet:
    index: int
    base: Path
    hosts: list[LightHost] = field(default_factory=list)
    cgroup: Path | None = None
    _lock_fd: int = -1

    @property
    def bridge(self) -> str:
        return f"slbr{self.index}"

    @property
    def controller_address(self) -> str:
        return f"10.{240 + self.index}.0.1"

    @property
    def controller_key(self) -> Path:
        return self.base / "id_ed25519"

    @property
    def known_hosts_path(self) -> Path:
        return self.base / "known_hosts"

    @property
    def inventory_path(self) -> Path:
        return self.base / "inventory.yml"

    # --- boot -------------------------------------------------------------------------------------

    @classmethod
    def up(cls, count: int, ready_timeout: float = 120) -> LightFleet:
        if not 1 <= count <= MAX_HOSTS:
            raise ValueError(f"light fleet: 1..{MAX_HOSTS} hosts, not {count}")
        if missing := missing_prerequisites():
            raise LightHostError("light hosts unavailable: " + "; ".join(missing))
        fleet = cls._allocate()
        try:
            fleet._boot(count, ready_timeout)
        except BaseException:
            fleet.down()
            raise
        return fleet

    @classmethod
    def _allocate(cls) -> LightFleet:
        """The first free index 0..15 (a lock file per index, held while the fleet lives)."""
        state = state_dir()
        state.mkdir(parents=True, exist_ok=True)
        for index in range(16):
            fd = os.open(state / f"light-{index}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            # Whatever a killed run left in this slot: its processes, namespaces, links and bridge.
            _kill_cgroup(_make_cgroup(f"light-{index}"), time.monotonic())
            _sweep(index)
            base = Path(tempfile.mkdtemp(prefix=f"sshd-setup-light{index}-", dir="/dev/shm"))
            return cls(index=index, base=base, _lock_fd=fd)
        raise LightHostError("light fleet: all 16 fleet slots are in use")

    def _boot(self, count: int, ready_timeout: float) -> None:
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "light-controller", "-f", str(self.controller_key)])
        authorized = self.controller_key.with_suffix(".pub").read_bytes()
        accounts = _accounts_with_users()
        prefix = f"10.{240 + self.index}"
        for n in range(count):
            host = LightHost(
                name=f"l{n + 1:04d}",
                address=f"{prefix}.{1 + n // 250}.{2 + n % 250}",
                netns=f"sl{self.index}h{n + 1}",
                dir=self.base / f"h{n + 1}",
            )
            for sub in ("etc.u", "etc.w", "var.u", "var.w"):
                (host.dir / sub).mkdir(parents=True)
            for name, text in accounts.items():
                target = host.dir / "etc.u" / name
                target.write_text(text)
                shutil.copymode(Path("/etc") / name, target)
            (host.dir / "authorized_keys").write_bytes(authorized)
            self.hosts.append(host)
        _raise_neighbour_limits(count)
        self._make_network(prefix)
        self.cgroup = _make_cgroup(f"light-{self.index}")
        for host in self.hosts:
            self._start(host)
        self._wait_ready(time.monotonic() + ready_timeout)
        self._write_access_files()

    def _make_network(self, prefix: str) -> None:
        lines = [
            f"link add name {self.bridge} type bridge",
            f"address add {prefix}.0.1/16 dev {self.bridge}",
            f"link set {self.bridge} up",
        ]
        for n, host in enumerate(self.hosts, 1):
            veth = f"sl{self.index}v{n}"
            lines += [
                f"netns add {host.netns}",
                f"link add {veth} type veth peer name eth0 netns {host.netns}",
                f"link set {veth} master {self.bridge} up",
            ]
        _run(["ip", "-batch", "-"], stdin="\n".join(lines) + "\n")
        for host in self.hosts:
            inside = f"address add {host.address}/16 dev eth0\nlink set eth0 up\nlink set lo up\n"
            _run(["ip", "-n", host.netns, "-batch", "-"], stdin=inside)

    def _start(self, host: LightHost) -> None:
        cgroup = self.cgroup

        def enter_cgroup() -> None:
            if cgroup is not None:
                with contextlib.suppress(OSError):
                    (cgroup / "cgroup.procs").write_text("0")

        argv = ["nsenter", f"--net=/run/netns/{host.netns}", "unshare", "--mount", "--propagation", "private"]
        argv += ["--", "sh", "-c", _HOST_INIT, "light-host", str(host.dir)]
        with open(host.dir / "init.log", "wb") as log:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, preexec_fn=enter_cgroup
            )
        host.pid = proc.pid  # nsenter, unshare and sh exec in turn: this pid becomes sshd

    def _wait_ready(self, deadline: float) -> None:
        pending = list(self.hosts)
        while pending:
            pending = [h for h in pending if not _banner(h.address)]
            if not pending:
                return
            if time.monotonic() > deadline:
                first = pending[0]
                log = (first.dir / "init.log").read_text(errors="replace").strip()[-300:]
                raise LightHostError(f"light fleet: {len(pending)} host(s) not ready, e.g. {first.name}: {log}")
            time.sleep(0.05)

    def _write_access_files(self) -> None:
        keys = [p.read_text().split()[:2] for p in sorted(Path("/etc/ssh").glob("ssh_host_*_key.pub"))]
        lines = [f"{h.address},{h.name} {kind} {blob}\n" for h in self.hosts for kind, blob in keys]
        self.known_hosts_path.write_text("".join(lines))
        inventory = {
            "all": {
                "vars": {
                    "ansible_user": "root",
                    "ansible_ssh_private_key_file": str(self.controller_key),
                    "ansible_ssh_common_args": f"-o UserKnownHostsFile={self.known_hosts_path}",
                },
                "hosts": {h.name: {"ansible_host": h.address} for h in self.hosts},
            }
        }
        self.inventory_path.write_text(yaml.safe_dump(inventory, sort_keys=False))

    # --- measure and stop ---------------------------------------------------------------------------

    def cpu_seconds(self) -> float:
        """CPU used so far by every host process (sshd, its sessions and everything they ran)."""
        if self.cgroup is None:
            return 0.0
        with contextlib.suppress(OSError, ValueError):
            for line in (self.cgroup / "cpu.stat").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return int(value) / 1e6
        return 0.0

    def down(self) -> None:
        """Stop every host's processes, delete the namespaces, the bridge, the cgroup and the files. Idempotent."""
        for host in self.hosts:
            if host.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(host.pid, signal.SIGTERM)
        _kill_cgroup(self.cgroup, time.monotonic() + 10)
        for host in self.hosts:
            if host.pid:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(host.pid, os.WNOHANG)
        _sweep(self.index)
        if self.cgroup is not None:
            remove_cgroup_tree(self.cgroup)
        shutil.rmtree(self.base, ignore_errors=True)
        self.hosts = []
        if self._lock_fd >= 0:
            with file_lock(state_dir() / "light-sysctl.lock"):
                if not _other_light_fleets(self.index):  # the last light fleet: the ARP limits go back
                    restore_sysctls(state_dir() / NEIGHBOUR_SYSCTL_RECORD)
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> LightFleet:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.down()


# --- system helpers ---------------------------------------------------------------------------------


def _raise_neighbour_limits(count: int) -> None:
    """All hosts are neighbours of this machine on one bridge: past the kernel's ARP table limits
    (gc_thresh2 512 soft, gc_thresh3 1024 hard) entries are dropped and connections fail with 'No route to
    host' (measured at 1,000 hosts). Raised while light fleets live (live values, never persisted)."""
    if count <= 256:  # well inside the defaults
        return
    limits = (("gc_thresh1", count + 128), ("gc_thresh2", 2 * count + 512), ("gc_thresh3", 4 * count + 1024))
    with file_lock(state_dir() / "light-sysctl.lock"):
        for key, value in limits:
            sysctl_at_least(f"net.ipv4.neigh.default.{key}", value, state_dir() / NEIGHBOUR_SYSCTL_RECORD)


def _other_light_fleets(index: int) -> bool:
    """Does a light fleet other than INDEX hold its slot lock?"""
    for other in range(16):
        if other == index or not (state_dir() / f"light-{other}.lock").exists():
            continue
        fd = os.open(state_dir() / f"light-{other}.lock", os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)  # closing drops a lock we took for the test
    return False


def _run(argv: list[str], stdin: str | None = None) -> str:
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        raise LightHostError(f"{' '.join(argv[:3])} failed: {proc.stderr.strip()[-300:]}")
    return proc.stdout


def _link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def _banner(address: str) -> bool:
    try:
        with socket.create_connection((address, 22), timeout=0.5) as sock:
            return sock.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def _accounts_with_users() -> dict[str, str]:
    """passwd, group, shadow and gshadow of this machine plus the benchmark users (for each host's /etc)."""
    texts = {name: (Path("/etc") / name).read_text() for name in ("passwd", "group", "shadow", "gshadow")}
    for i, user in enumerate(USERS):
        uid = _FIRST_UID + i
        texts["passwd"] += f"{user}:x:{uid}:{uid}::/home/{user}:/bin/sh\n"
        texts["group"] += f"{user}:x:{uid}:\n"
        texts["shadow"] += f"{user}:*:19000:0:99999:7:::\n"
        texts["gshadow"] += f"{user}:!::\n"
    return texts


def _make_cgroup(name: str) -> Path | None:
    root = next((r for r in cgroup_roots() if (r / "cgroup.procs").exists() and r.name != "systemd"), None)
    if root is None:
        return None
    path = root / "sshd-setup-light" / name
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return path


def _kill_cgroup(cgroup: Path | None, deadline: float) -> None:
    """Wait for the cgroup to empty after SIGTERM; SIGKILL whatever is still in it at the deadline."""
    if cgroup is None:
        return
    while time.monotonic() < deadline:
        if not _pids(cgroup):
            return
        time.sleep(0.05)
    for pid in _pids(cgroup):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    end = time.monotonic() + 5
    while _pids(cgroup) and time.monotonic() < end:
        time.sleep(0.05)


def _pids(cgroup: Path) -> list[int]:
    pids: list[int] = []
    for procs in cgroup.rglob("cgroup.procs"):
        with contextlib.suppress(OSError, ValueError):
            pids += [int(p) for p in procs.read_text().split()]
    return pids


def _sweep(index: int) -> None:
    """Delete fleet INDEX's namespaces and bridge (a namespace's deletion takes its veth pair along)."""
    prefix = f"sl{index}h"
    netns_dir = Path("/run/netns")
    names = [p.name for p in netns_dir.iterdir()] if netns_dir.is_dir() else []
    lines = [f"netns delete {n}" for n in names if n.startswith(prefix) and n[len(prefix) :].isdigit()]
    veth = f"sl{index}v"
    links = [n for n in os.listdir("/sys/class/net") if n.startswith(veth) and n[len(veth) :].isdigit()]
    lines += [f"link delete {n}" for n in links]
    if _link_exists(f"slbr{index}"):
        lines.append(f"link delete slbr{index}")
    if lines:
        subprocess.run(["ip", "-force", "-batch", "-"], input="\n".join(lines) + "\n", capture_output=True, text=True)


@contextlib.contextmanager
def light_fleet(count: int) -> Iterator[LightFleet]:
    fleet = LightFleet.up(count)
    try:
        yield fleet
    finally:
        fleet.down()
