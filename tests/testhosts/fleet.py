"""Fleets of real test hosts: systemd-nspawn containers running real systemd and the distro's sshd.

One fleet = one private Linux bridge ``sst<K>`` holding 10.231.K.1/24 on this machine, and N containers
(10.231.K.2 ...) each booted from an overlay over a cached debootstrap tree (see rootfs.py). No default
route, no NAT, no forwarding: the hosts can only talk to this machine and to each other.

Everything a fleet starts is recorded in ``<state dir>/fleet-<K>.json`` as soon as it exists, so a
fleet can be stopped by another process (``python -m tests.testhosts down --all``) if its owner died.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from tests.testhosts import _system as sysx
from tests.testhosts._paths import DEFAULT_SUITE, SUITES, cache_dir, state_dir
from tests.testhosts._system import HarnessError
from tests.testhosts.rootfs import ensure_rootfs

NET_PREFIX = "10.231"
BRIDGE_PREFIX = "sst"
MARKER_ENV = "SSHD_SETUP_TESTHOSTS_FLEET"
FLAVOURS = (None, "rhel")
SOCKET_STYLES = ("per-connection", "service")
STOP_DEADLINE = 20.0
_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")

RHEL_OS_RELEASE = """\
NAME="Red Hat Enterprise Linux"
VERSION="9.4 (Plow)"
ID="rhel"
ID_LIKE="fedora"
VERSION_ID="9.4"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Red Hat Enterprise Linux 9.4 (Plow)"
ANSI_COLOR="0;31"
HOME_URL="https://www.redhat.com/"
"""
RHEL_RELEASE = "Red Hat Enterprise Linux release 9.4 (Plow)\n"


@dataclass(frozen=True)
class HostSpec:
    """What to boot. ``flavour="rhel"`` dresses a Debian tree up as RHEL for service-name logic only."""

    name: str
    suite: str = DEFAULT_SUITE
    flavour: str | None = None
    socket_activated: bool = False
    socket_style: str = "per-connection"
    """With socket_activated: "per-connection" (Accept=yes, one `sshd -i` per connection) or "service"
    (Debian's own ssh.socket, Accept=no: the first connection starts ssh.service, which takes the socket)."""

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ValueError(f"host name {self.name!r}: use 1-32 of [a-z0-9-], not starting/ending with '-'")
        if self.suite not in SUITES:
            raise ValueError(f"host {self.name}: unknown suite {self.suite!r}; known: {', '.join(SUITES)}")
        if self.flavour not in FLAVOURS:
            raise ValueError(f"host {self.name}: unknown flavour {self.flavour!r}; known: None, 'rhel'")
        if self.socket_style not in SOCKET_STYLES:
            raise ValueError(f"host {self.name}: unknown socket style {self.socket_style!r}; known: {SOCKET_STYLES}")
        if self.flavour == "rhel" and self.socket_activated and self.socket_style != "per-connection":
            raise ValueError(f"host {self.name}: a RHEL-flavoured socket host is per-connection (sshd.socket)")

    @property
    def unit(self) -> str:
        return "sshd" if self.flavour == "rhel" else "ssh"


class HostCommandError(subprocess.CalledProcessError):
    """A command run on a test host exited non-zero (255 = ssh itself failed)."""

    def __init__(self, host: str, cmd: str, returncode: int, stdout: str, stderr: str) -> None:
        super().__init__(returncode, cmd, stdout, stderr)
        self.host = host

    def __str__(self) -> str:
        err = (self.stderr or "").strip()
        return f"[{self.host}] {self.cmd!r} exited {self.returncode}" + (f": {err}" if err else "")


@dataclass
class _HostState:
    name: str
    suite: str
    flavour: str | None
    socket_activated: bool
    address: str
    machine: str
    hostdir: str
    pid: int | None = None
    starttime: int | None = None
    socket_style: str = "per-connection"


@dataclass
class _FleetState:
    id: int
    bridge: str
    workdir: str
    workdir_created: bool
    cm_dir: str
    owner_pid: int | None
    owner_starttime: int | None
    created_at: float
    cgroups: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    hosts: list[_HostState] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> _FleetState:
        hosts = [_HostState(**h) for h in data.pop("hosts", [])]
        return cls(hosts=hosts, **data)


class Host:
    """One booted test host. Commands run as root over real SSH with the fleet's controller key."""

    def __init__(self, fleet: Fleet, st: _HostState) -> None:
        self._fleet = fleet
        self._st = st
        self._popen: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"Host({self.name!r}, {self.address}, {self.suite}, flavour={self.flavour})"

    name = property(lambda self: self._st.name)
    address = property(lambda self: self._st.address)
    suite = property(lambda self: self._st.suite)
    flavour = property(lambda self: self._st.flavour)
    socket_activated = property(lambda self: self._st.socket_activated)
    socket_style = property(lambda self: self._st.socket_style)

    @property
    def unit(self) -> str:
        """The sshd unit as the service manager knows it: "sshd" (RHEL family) or "ssh" (Debian)."""
        return "sshd" if self.flavour == "rhel" else "ssh"

    @property
    def spec(self) -> HostSpec:
        return HostSpec(self.name, self.suite, self.flavour, self.socket_activated, self.socket_style)

    @property
    def root(self) -> Path:
        """The host's '/' as seen from this machine (the overlay mount); for inspection only."""
        return Path(self._st.hostdir) / "root"

    @property
    def console_log(self) -> Path:
        return Path(self._st.hostdir) / "console.log"

    @property
    def pid(self) -> int | None:
        """PID of this host's systemd-nspawn process on this machine."""
        return self._st.pid

    def leader_pid(self) -> int | None:
        """PID (on this machine) of the container's PID 1 (its systemd), if running."""
        if self._st.pid is None or not sysx.is_alive(self._st.pid, self._st.starttime):
            return None
        kids = sysx.children_of(self._st.pid)
        own_ns = os.readlink("/proc/self/ns/pid")
        for kid in kids:
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{kid}/ns/pid") != own_ns:
                    return kid
        return None

    # --- SSH -----------------------------------------------------------------------------------

    def ssh_argv(self, *, multiplex: bool = True) -> list[str]:
        """argv prefix to reach this host with the system ssh client; append `--` and a command."""
        argv = ["ssh", "-F", str(self._fleet.ssh_config_path), "-o", "ConnectTimeout=10"]
        if multiplex:
            argv += [
                "-o",
                "ControlMaster=auto",
                "-o",
                f"ControlPath={self._fleet._state.cm_dir}/%C",
                "-o",
                "ControlPersist=300",
            ]
        else:
            argv += ["-o", "ControlMaster=no", "-o", "ControlPath=none"]
        return [*argv, self.name]

    def _ssh(
        self, cmd: str, *, input: bytes | None, timeout: float, multiplex: bool
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [*self.ssh_argv(multiplex=multiplex), "--", cmd],
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )

    def run(
        self, cmd: str, check: bool = True, timeout: float = 120, *, multiplex: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run CMD (a shell command line) as root on the host over SSH.

        multiplex=True reuses one persistent connection (fast; it survives sshd reloads, so it can
        still repair a host whose sshd no longer accepts logins). Use multiplex=False to prove that
        a NEW login works. check=True raises HostCommandError on a non-zero exit.
        """
        raw = self._ssh(cmd, input=None, timeout=timeout, multiplex=multiplex)
        out = raw.stdout.decode(errors="replace")
        err = raw.stderr.decode(errors="replace")
        if check and raw.returncode != 0:
            raise HostCommandError(self.name, cmd, raw.returncode, out, err)
        return subprocess.CompletedProcess(raw.args, raw.returncode, out, err)

    def read_file(self, path: str) -> bytes:
        raw = self._ssh(f"cat -- {shlex.quote(path)}", input=None, timeout=60, multiplex=True)
        if raw.returncode != 0:
            raise HostCommandError(self.name, f"cat {path}", raw.returncode, "", raw.stderr.decode())
        return raw.stdout

    def write_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Write DATA to PATH (root-owned, MODE) atomically: temp file in the same dir, then rename."""
        q = shlex.quote(path)
        tmp = shlex.quote(f"{path}.testhosts-tmp")
        cmd = f"set -e; umask 077; cat > {tmp}; chown root:root {tmp}; chmod {mode:o} {tmp}; mv -f {tmp} {q}"
        raw = self._ssh(cmd, input=data, timeout=60, multiplex=True)
        if raw.returncode != 0:
            raise HostCommandError(self.name, f"write {path}", raw.returncode, "", raw.stderr.decode())

    def journal_cursor(self) -> str:
        """Cursor of the newest journal entry; pass it to journal_since()."""
        out = self.run("journalctl -q --no-pager -n 1 -o json").stdout.strip().splitlines()
        if not out:
            raise HarnessError(f"{self.name}: journal is empty")
        return str(json.loads(out[-1])["__CURSOR"])

    def journal_since(self, cursor: str, unit: str | None = None) -> str:
        """Journal lines after CURSOR: of UNIT if given, else of sshd (any sshd/sshd-session process)."""
        sel = f"-u {shlex.quote(unit)}" if unit else "-t sshd -t sshd-session -t sshd-auth"
        cmd = f"journalctl -q --no-pager -o short-iso --after-cursor={shlex.quote(cursor)} {sel}"
        return self.run(cmd).stdout

    def sighup_count(self) -> int:
        """How many times sshd logged "Received SIGHUP" (i.e. was reloaded) on this host so far."""
        out = self.run("journalctl -q --no-pager -t sshd -o cat | grep -c 'Received SIGHUP' || true")
        return int(out.stdout.strip() or 0)

    def wait_for_ssh_port(self, timeout: float = 10.0) -> None:
        """Wait until something accepts TCP connections on port 22 and sends an SSH banner."""
        deadline = time.monotonic() + timeout
        while not _banner_ok(self.address):
            if time.monotonic() >= deadline:
                raise HarnessError(f"{self.name}: no SSH banner on {self.address}:22 after {timeout} s")
            time.sleep(0.05)

    def testinfra(self) -> Any:
        """A pytest-testinfra host for this host over the system ssh client (``ssh://`` backend).

        Unlike ``paramiko://`` (which ignores UserKnownHostsFile and only warns on unknown host
        keys), this keeps strict host key checking against the fleet's known_hosts.
        """
        import testinfra

        cm = self._fleet._state.cm_dir
        # testinfra %-formats its command line, hence %%C for ssh's %C.
        return testinfra.get_host(
            f"ssh://{self.name}", ssh_config=str(self._fleet.ssh_config_path), controlpath=f"{cm}/ti-%%C"
        )

    def run_nsenter(self, cmd: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run CMD inside the container WITHOUT SSH (nsenter into its namespaces), as its root.

        For checks that must not depend on (or disturb) sshd: e.g. before the first connection to
        a socket-activated host, or after a test broke sshd on purpose.
        """
        leader = self.leader_pid()
        if leader is None:
            raise HarnessError(f"{self.name}: container is not running")
        argv = [
            "nsenter",
            f"--target={leader}",
            "--mount",
            "--uts",
            "--ipc",
            "--net",
            "--pid",
            "--root",
            "--wd",
            "--",
            "/usr/bin/env",
            "-i",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME=/root",
            "LANG=C.UTF-8",
            "/bin/sh",
            "-c",
            cmd,
        ]
        proc = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise HostCommandError(self.name, cmd, proc.returncode, proc.stdout, proc.stderr)
        return proc


def wait_banner(address: str, port: int = 22, seconds: float = 15.0) -> bool:
    """An SSH banner on address:port within seconds (a busy host's per-connection sshd can be slow)."""
    deadline = time.monotonic() + seconds
    while not _banner_ok(address, port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _banner_ok(address: str, port: int = 22) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1.0) as s:
            s.settimeout(2.0)
            data = b""
            while b"\n" not in data and len(data) < 512:
                chunk = s.recv(256)
                if not chunk:
                    break
                data += chunk
            if data.startswith(b"SSH-"):
                # Say goodbye politely so sshd logs a plain disconnect, not a protocol error.
                with contextlib.suppress(OSError):
                    s.sendall(b"SSH-2.0-testhosts-probe\r\n")
                return True
            return False
    except OSError:
        return False


# --- process-wide bookkeeping: fleets this process owns are stopped at exit or on SIGTERM/SIGHUP ---

_LIVE: dict[int, Fleet] = {}
_LIVE_LOCK = threading.Lock()
_HANDLERS_INSTALLED = False


def _down_live_fleets() -> None:
    with _LIVE_LOCK:
        fleets = list(_LIVE.values())
    for fleet in fleets:
        with contextlib.suppress(Exception):
            fleet.down()


def _on_signal(signum: int, _frame: object) -> None:
    # Treat SIGTERM/SIGHUP like Ctrl-C: pytest then stops the session and runs its finalizers (a
    # SystemExit raised inside a test would only fail that test); plain scripts unwind through
    # finally blocks and context managers, and atexit stops whatever is still up.
    raise KeyboardInterrupt(f"signal {signum}")


def _install_handlers() -> None:
    global _HANDLERS_INSTALLED
    if _HANDLERS_INSTALLED:
        return
    _HANDLERS_INSTALLED = True
    atexit.register(_down_live_fleets)
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(sig) in (signal.SIG_DFL, None):
                signal.signal(sig, _on_signal)


SYSCTL_RECORD = "sysctl-before.json"
"""In the state dir: the kernel limits as they were before the first live fleet raised them."""


def _raise_sysctls() -> None:
    """The default of 128 inotify instances kills containers when ~16+ boot at once: raised (live values,
    never persisted) while a fleet lives; the last fleet's down() puts the recorded values back."""
    with sysx.file_lock(state_dir() / "alloc.lock"):
        for key, value in (("fs.inotify.max_user_instances", 8192), ("fs.inotify.max_user_watches", 1048576)):
            try:
                sysx.sysctl_at_least(key, value, state_dir() / SYSCTL_RECORD)
            except OSError as exc:
                print(f"testhosts: warning: cannot raise {key} to {value}: {exc}", file=sys.stderr)


def _state_file(fleet_id: int) -> Path:
    return state_dir() / f"fleet-{fleet_id}.json"


def list_fleet_states() -> list[dict[str, Any]]:
    """Raw state records of every fleet known to the state dir (live or leftover)."""
    out = []
    for path in sorted(state_dir().glob("fleet-*.json")):
        with contextlib.suppress(OSError, ValueError):
            out.append(json.loads(path.read_text()))
    return out


def _owner_alive(data: dict[str, Any]) -> bool:
    pid = data.get("owner_pid")
    return pid is not None and sysx.is_alive(pid, data.get("owner_starttime"))


class Fleet:
    """A set of booted test hosts plus the files to reach them (inventory, ssh_config, known_hosts)."""

    def __init__(self, state: _FleetState) -> None:
        self._state = state
        self._lock = threading.RLock()
        self.hosts: list[Host] = [Host(self, h) for h in state.hosts]
        self._down = False

    # --- paths ---------------------------------------------------------------------------------
    @property
    def id(self) -> int:
        return self._state.id

    @property
    def bridge(self) -> str:
        return self._state.bridge

    @property
    def subnet(self) -> str:
        return f"{NET_PREFIX}.{self.id}.0/24"

    @property
    def gateway_address(self) -> str:
        """This machine's address on the fleet's bridge (where test traffic comes from)."""
        return f"{NET_PREFIX}.{self.id}.1"

    @property
    def workdir(self) -> Path:
        return Path(self._state.workdir)

    @property
    def inventory_path(self) -> Path:
        return self.workdir / "inventory.yml"

    @property
    def ssh_config_path(self) -> Path:
        return self.workdir / "ssh_config"

    @property
    def known_hosts_path(self) -> Path:
        return self.workdir / "known_hosts"

    @property
    def controller_key(self) -> Path:
        return self.workdir / "controller_key"

    @property
    def cgroup_paths(self) -> list[Path]:
        return [Path(p) for p in self._state.cgroups]

    def host(self, name: str) -> Host:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(f"no host {name!r} in fleet {self.id} ({', '.join(h.name for h in self.hosts)})")

    def __repr__(self) -> str:
        return f"Fleet(id={self.id}, bridge={self.bridge}, hosts={[h.name for h in self.hosts]})"

    def __enter__(self) -> Fleet:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.down()

    # --- state ---------------------------------------------------------------------------------
    def _save(self) -> None:
        with self._lock:
            sysx.write_atomic(_state_file(self.id), json.dumps(asdict(self._state), indent=1) + "\n")

    def detach(self, owner_pid: int | None = None) -> None:
        """Leave the fleet running after this process exits; `down` stops it later.

        OWNER_PID (e.g. the shell that ran `python -m tests.testhosts up`) becomes the fleet's owner:
        `down --all` leaves the fleet alone while that process lives (unless forced).
        """
        owner = sysx.proc_stat(owner_pid) if owner_pid else None
        with self._lock:
            self._state.owner_pid = owner.pid if owner else None
            self._state.owner_starttime = owner.starttime if owner else None
            self._save()
        with _LIVE_LOCK:
            _LIVE.pop(self.id, None)
        for h in self.hosts:
            h._popen = None  # not ours to reap any more

    @classmethod
    def load(cls, fleet_id: int) -> Fleet:
        """Attach to a fleet started by another process (e.g. `python -m tests.testhosts up`)."""
        path = _state_file(fleet_id)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise HarnessError(f"no fleet {fleet_id} (no {path})") from None
        return cls(_FleetState.from_json(data))

    # --- up ------------------------------------------------------------------------------------
    @classmethod
    def up(cls, specs: list[HostSpec], workdir: Path | None = None, *, boot_timeout: float | None = None) -> Fleet:
        """Boot SPECS in parallel and wait until each answers; on any failure stop everything and raise."""
        from tests.testhosts.prereqs import missing_prerequisites

        specs = list(specs)
        if not specs:
            raise ValueError("a fleet needs at least one HostSpec")
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"host names must be unique: {names}")
        if len(specs) > 250:
            raise ValueError("at most 250 hosts per fleet")
        missing = missing_prerequisites()
        if missing:
            raise HarnessError("cannot boot test hosts: " + "; ".join(missing))
        bases = {suite: ensure_rootfs(suite) for suite in sorted({s.suite for s in specs})}
        fleet = cls._allocate(workdir)
        try:
            _raise_sysctls()
            fleet._boot(specs, bases, boot_timeout or 60.0 + 4.0 * len(specs))
        except BaseException:
            fleet.down()
            raise
        return fleet

    @classmethod
    def _allocate(cls, workdir: Path | None) -> Fleet:
        sd = state_dir()
        sd.mkdir(parents=True, exist_ok=True)
        me = sysx.proc_stat(os.getpid())
        with sysx.file_lock(sd / "alloc.lock"):
            nets_in_use = {_net24(a) for a in sysx.ipv4_addresses() + sysx.ipv4_routes()}
            k = next(
                (
                    k
                    for k in range(1, 255)
                    if not _state_file(k).exists()
                    and not sysx.link_exists(f"{BRIDGE_PREFIX}{k}")
                    and f"{NET_PREFIX}.{k}" not in nets_in_use
                ),
                None,
            )
            if k is None:
                raise HarnessError("no free fleet slot (254 in use?); see `python -m tests.testhosts list`")
            created = workdir is None
            wd = (sd / f"fleet-{k}") if workdir is None else Path(workdir).resolve()
            if (wd / "hosts").exists() or (wd / "inventory.yml").exists():
                raise HarnessError(f"{wd} already holds a fleet; `python -m tests.testhosts down {wd}` first")
            state = _FleetState(
                id=k,
                bridge=f"{BRIDGE_PREFIX}{k}",
                workdir=str(wd),
                workdir_created=created or not wd.exists(),
                cm_dir=str(sd / f"cm{k}"),
                owner_pid=os.getpid(),
                owner_starttime=me.starttime if me else None,
                created_at=time.time(),
            )
            fleet = cls(state)
            fleet._save()  # claims slot K before the lock is released
            for root in sysx.cgroup_roots():
                cg = root / sysx.CGROUP_GROUP / f"fleet-{k}"
                cg.mkdir(parents=True, exist_ok=True)
                state.cgroups.append(str(cg))
            fleet._save()
        with _LIVE_LOCK:
            _LIVE[k] = fleet
        _install_handlers()
        wd.mkdir(parents=True, exist_ok=True)
        Path(state.cm_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
        fleet._make_bridge()
        return fleet

    def _make_bridge(self) -> None:
        br = self.bridge
        sysx.sh(["ip", "link", "add", "name", br, "type", "bridge"])
        with contextlib.suppress(OSError):  # IPv4 only: no router advertisements, no link-local chatter
            Path(f"/proc/sys/net/ipv6/conf/{br}/disable_ipv6").write_text("1\n")
        sysx.sh(["ip", "addr", "add", f"{self.gateway_address}/24", "dev", br])
        sysx.sh(["ip", "link", "set", br, "up"])

    def _boot(self, specs: list[HostSpec], bases: dict[str, Path], boot_timeout: float) -> None:
        st = self._state
        sysx.sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"testhosts-fleet-{st.id}",
                 "-f", str(self.controller_key)])  # fmt: skip
        st.files += [str(self.controller_key), f"{self.controller_key}.pub"]
        for i, spec in enumerate(specs):
            hs = _HostState(
                name=spec.name,
                suite=spec.suite,
                flavour=spec.flavour,
                socket_activated=spec.socket_activated,
                socket_style=spec.socket_style,
                address=f"{NET_PREFIX}.{st.id}.{i + 2}",
                machine=f"t{st.id}h{i + 2}",
                hostdir=str(self.workdir / "hosts" / spec.name),
            )
            st.hosts.append(hs)
            self.hosts.append(Host(self, hs))
        self._save()
        pubkey = Path(f"{self.controller_key}.pub").read_text()
        with ThreadPoolExecutor(max_workers=min(len(self.hosts), 16)) as pool:
            list(pool.map(lambda h: self._start_host(h, bases[h.suite], pubkey), self.hosts))
        self._write_access_files()
        self._wait_ready(time.monotonic() + boot_timeout)

    def _start_host(self, host: Host, base: Path, pubkey: str) -> None:
        hd = Path(host._st.hostdir)
        for sub in ("upper", "work", "root"):
            (hd / sub).mkdir(parents=True, exist_ok=True)
        root = hd / "root"
        opts = f"lowerdir={base},upperdir={hd / 'upper'},workdir={hd / 'work'}"
        sysx.sh(["mount", "-t", "overlay", "overlay", "-o", opts, str(root)])
        _prepare_root(root, host, pubkey, self.gateway_address)
        cgroup_procs = []
        for cg in self.cgroup_paths:
            (cg / host._st.machine).mkdir(exist_ok=True)
            cgroup_procs.append(str(cg / host._st.machine / "cgroup.procs"))
        nspawn = [
            "systemd-nspawn",
            "--quiet",
            "--boot",
            f"--directory={root}",
            f"--machine={host._st.machine}",
            f"--hostname={host.name}",
            "--register=no",
            "--keep-unit",
            f"--network-bridge={self.bridge}",
            "--resolv-conf=off",
            "--timezone=off",
            "--link-journal=no",
            "--console=read-only",
            f"--setenv={MARKER_ENV}={self.id}",
        ]
        # Each container gets its own cgroup (else their systemds fight over one subtree): the shell
        # moves itself there, then becomes systemd-nspawn (same PID).
        script = 'for f in "$@"; do [ "$f" = -- ] && break; echo $$ > "$f" || exit 97; shift; done; shift; exec "$@"'
        argv = ["/bin/sh", "-c", script, "sh", *cgroup_procs, "--", *nspawn]
        with open(hd / "console.log", "wb") as log:
            popen = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        st = sysx.proc_stat(popen.pid)
        with self._lock:
            host._popen = popen
            host._st.pid = popen.pid
            host._st.starttime = st.starttime if st else None
            self._save()

    def _write_access_files(self) -> None:
        st = self._state
        key = str(self.controller_key)
        kh = str(self.known_hosts_path)
        lines = []
        for h in self.hosts:
            for pub in sorted((h.root / "etc/ssh").glob("ssh_host_*_key.pub")):
                kind, blob = pub.read_text().split()[:2]
                lines.append(f"{h.address},{h.name} {kind} {blob}\n")
        sysx.write_atomic(self.known_hosts_path, "".join(lines))
        cfg = [f"# Test hosts of fleet {st.id} (sshd-setup tests/testhosts). Use: ssh -F {self.ssh_config_path} HOST\n"]
        for h in self.hosts:
            cfg.append(
                f"\nHost {h.name}\n    HostName {h.address}\n    User root\n    IdentityFile {key}\n"
                f"    IdentitiesOnly yes\n    UserKnownHostsFile {kh}\n    GlobalKnownHostsFile /dev/null\n"
                f"    StrictHostKeyChecking yes\n    BatchMode yes\n    LogLevel ERROR\n"
            )
        sysx.write_atomic(self.ssh_config_path, "".join(cfg))
        children: dict[str, dict[str, Any]] = {}
        for h in self.hosts:
            groups = [h.suite, h.flavour or "debian"] + (["socket_activated"] if h.socket_activated else [])
            for g in groups:
                children.setdefault(g, {"hosts": {}})["hosts"][h.name] = {}
        inventory = {
            "all": {
                "vars": {
                    "ansible_user": "root",
                    "ansible_ssh_private_key_file": key,
                    "ansible_ssh_common_args": f"-o UserKnownHostsFile={kh}",
                },
                "hosts": {h.name: {"ansible_host": h.address} for h in self.hosts},
                "children": children,
            }
        }
        header = f"# Test hosts of fleet {st.id}, written by tests/testhosts; removed by `down`.\n"
        sysx.write_atomic(self.inventory_path, header + yaml.safe_dump(inventory, sort_keys=False))
        st.files += [str(p) for p in (self.known_hosts_path, self.ssh_config_path, self.inventory_path)]
        self._save()

    def _wait_ready(self, deadline: float) -> None:
        pending = list(self.hosts)
        while pending:
            for h in list(pending):
                if h.pid is None or not sysx.is_alive(h.pid, h._st.starttime):
                    raise HarnessError(f"{h.name}: systemd-nspawn exited during boot\n{_tail(h.console_log)}")
                if h.socket_activated:
                    # Do not connect: the first connection is what starts ssh.service.
                    ok = h.leader_pid() is not None and (
                        h.run_nsenter(f"systemctl is-active {h.unit}.socket", check=False, timeout=10).stdout.strip()
                        == "active"
                    )
                else:
                    ok = _banner_ok(h.address)
                if ok:
                    pending.remove(h)
            if pending and time.monotonic() >= deadline:
                names = ", ".join(h.name for h in pending)
                raise HarnessError(f"hosts not ready in time: {names}\n{_tail(pending[0].console_log)}")
            if pending:
                time.sleep(0.2)

    # --- down ----------------------------------------------------------------------------------
    def down(self) -> None:
        """Stop every container, unmount, delete the bridge, cgroups and files. Idempotent."""
        with self._lock:
            if self._down:
                return
            self._stop_all()
            self._down = True
        with _LIVE_LOCK:
            _LIVE.pop(self.id, None)

    def _stop_all(self) -> None:
        st = self._state
        _stop_control_masters(Path(st.cm_dir))
        # 1. Orderly poweroff: SIGTERM to systemd-nspawn.
        procs: dict[int, int | None] = {}
        for h in self.hosts:
            if h._st.pid is not None and sysx.signal_pid(h._st.pid, signal.SIGTERM, h._st.starttime):
                procs[h._st.pid] = h._st.starttime
        survivors = sysx.wait_dead(procs, time.monotonic() + STOP_DEADLINE)
        # 2. Past the one deadline: SIGKILL the container's PID 1 (killing only nspawn leaves it running).
        for h in self.hosts:
            if h._st.pid in survivors:
                leader = h.leader_pid()
                if leader is not None:
                    sysx.kill_hard(leader)
                sysx.kill_hard(h._st.pid, h._st.starttime)
        if survivors:
            left = sysx.wait_dead({p: procs[p] for p in survivors}, time.monotonic() + 10)
            if left:
                raise HarnessError(f"fleet {st.id}: could not stop PIDs {left}")
        for h in self.hosts:
            if h._popen is not None:
                with contextlib.suppress(Exception):
                    h._popen.wait(timeout=5)
        # 3. Anything still in our cgroups (should be nothing) is ours: kill it.
        for cg in self.cgroup_paths:
            for pid in sysx.cgroup_pids(cg):
                sysx.kill_hard(pid)
        # 4. Unmount and remove host dirs.
        errors = []
        for h in self.hosts:
            hd = Path(h._st.hostdir)
            try:
                sysx.unmount_all_under(hd)
                if hd.exists():
                    shutil.rmtree(hd)
            except (OSError, HarnessError) as exc:
                errors.append(f"{h.name}: {exc}")
        hosts_dir = self.workdir / "hosts"
        with contextlib.suppress(OSError):
            hosts_dir.rmdir()
        # 5. Bridge (veths vanish with the containers' network namespaces) and leftover veths.
        if sysx.link_exists(st.bridge):
            sysx.sh(["ip", "link", "del", st.bridge], check=False)
        for h in self.hosts:
            veth = f"vb-{h._st.machine}"
            if sysx.link_exists(veth):
                sysx.sh(["ip", "link", "del", veth], check=False)
        # 6. cgroups, files, workdir, state.
        with sysx.file_lock(state_dir() / "alloc.lock"):
            for cg in self.cgroup_paths:
                if not sysx.remove_cgroup_tree(cg):
                    errors.append(f"cgroup {cg} not removable")
                with contextlib.suppress(OSError):  # the shared parent, once no fleet uses it
                    cg.parent.rmdir()
        for f in st.files:
            Path(f).unlink(missing_ok=True)
        shutil.rmtree(st.cm_dir, ignore_errors=True)
        if st.workdir_created:
            with contextlib.suppress(OSError):
                self.workdir.rmdir()
        if errors:
            self._save()
            raise HarnessError(f"fleet {st.id} teardown incomplete: " + "; ".join(errors))
        _state_file(st.id).unlink(missing_ok=True)
        with sysx.file_lock(state_dir() / "alloc.lock"):
            if not any(state_dir().glob("fleet-*.json")):  # the last fleet: the kernel limits go back
                sysx.restore_sysctls(state_dir() / SYSCTL_RECORD)


def _net24(cidr: str) -> str:
    """'10.231.3.1/24' -> '10.231.3' (first three octets); anything else maps to itself."""
    addr = cidr.split("/")[0]
    parts = addr.split(".")
    return ".".join(parts[:3]) if len(parts) == 4 else addr


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _stop_control_masters(cm_dir: Path) -> None:
    """Stop persistent ssh ControlMaster processes whose sockets live in CM_DIR."""
    marker = str(cm_dir) + "/"
    for pid in sysx.all_pids():
        args = sysx.cmdline(pid)
        if args and args[0].startswith("ssh: ") and marker in args[0]:
            st = sysx.proc_stat(pid)
            sysx.signal_pid(pid, signal.SIGTERM, st.starttime if st else None)


# --- preparing a host's root before boot -----------------------------------------------------------


def _usr_lib(root: Path) -> Path:
    return root / "usr/lib/systemd/system"


def _prepare_root(root: Path, host: Host, pubkey: str, gateway: str) -> None:
    etc = root / "etc"
    (etc / "hostname").write_text(f"{host.name}\n")
    (etc / "hosts").write_text(f"127.0.0.1\tlocalhost\n127.0.1.1\t{host.name}\n{gateway}\tcontroller\n")
    net = etc / "systemd/network"
    net.mkdir(parents=True, exist_ok=True)
    (net / "10-host0.network").write_text(
        f"[Match]\nName=host0\n\n[Network]\nAddress={host.address}/24\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n"
    )
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    os.chmod(ssh_dir, 0o700)
    ak = ssh_dir / "authorized_keys"
    ak.write_text(pubkey)
    os.chmod(ak, 0o600)
    # Own host keys for every host (the base has none).
    sysx.sh(["ssh-keygen", "-A", "-f", str(root)])
    if host.flavour == "rhel":
        _make_rhel(root)
    if host.socket_activated and host.flavour == "rhel":
        _make_rhel_socket(root)
    elif host.socket_activated and host.socket_style == "service":
        _make_debian_socket(root)
    elif host.socket_activated:
        _make_socket_activated(root)


def _unlink(paths: Iterable[Path]) -> None:
    for p in paths:
        if p.is_symlink() or p.exists():
            p.unlink()


def _make_rhel(root: Path) -> None:
    """Look like the RHEL family to service-name logic: sshd.service only, RHEL os-release."""
    lib = _usr_lib(root)
    etc = root / "etc"
    unit = (lib / "ssh.service").read_text()
    # RHEL's sshd.service reads its start options from /etc/sysconfig/sshd ($OPTIONS).
    unit = unit.replace("EnvironmentFile=-/etc/default/ssh", "EnvironmentFile=-/etc/sysconfig/sshd")
    unit = unit.replace("$SSHD_OPTS", "$OPTIONS")
    (lib / "sshd.service").write_text("".join(ln for ln in unit.splitlines(True) if not ln.startswith("Alias=")))
    (etc / "sysconfig").mkdir(exist_ok=True)
    (etc / "sysconfig/sshd").write_text("# Options for sshd (RHEL's /etc/sysconfig/sshd)\nOPTIONS=\n")
    sock = lib / "ssh.socket"
    if sock.exists():
        (lib / "sshd.socket").write_text(sock.read_text().replace("ssh.service", "sshd.service"))
    _unlink([lib / "ssh.service", sock, lib / "ssh@.service"])
    system = etc / "systemd/system"
    _unlink([system / "sshd.service", system / "multi-user.target.wants/ssh.service"])
    _unlink(system.glob("*.wants/ssh.socket"))
    (system / "multi-user.target.wants/sshd.service").symlink_to("/usr/lib/systemd/system/sshd.service")
    # Else systemd-sysv-generator recreates ssh.service from the init script.
    _unlink([etc / "init.d/ssh", *etc.glob("rc?.d/[SK][0-9][0-9]ssh")])
    (root / "usr/lib/os-release").write_text(RHEL_OS_RELEASE)
    (etc / "redhat-release").write_text(RHEL_RELEASE)
    _unlink([etc / "system-release", etc / "debian_version"])
    (etc / "system-release").symlink_to("redhat-release")


def _make_socket_activated(root: Path) -> None:
    """Socket activation: ssh.socket listens and ssh.service never runs.

    Each connection gets its own `sshd -i` (ssh@.service, Accept=yes), so a changed sshd_config needs
    no reload and `systemctl reload ssh` fails with "not active" -- the case the tool must handle.
    (Accept=no, where the socket starts ssh.service, breaks on reload with Debian's sshd: the
    re-executed daemon tries to bind port 22 itself and exits; that is not what this flavour tests.)
    """
    lib = _usr_lib(root)
    if not (lib / "ssh.socket").exists():
        raise HarnessError(f"{root}: this suite ships no ssh.socket")
    if not (lib / "ssh@.service").exists():  # Debian stopped shipping it with OpenSSH 9; its old text:
        (root / "etc/systemd/system/ssh@.service").write_text(
            "[Unit]\nDescription=OpenBSD Secure Shell server per-connection daemon\nAfter=auditd.service\n\n"
            "[Service]\nEnvironmentFile=-/etc/default/ssh\nExecStart=-/usr/sbin/sshd -i $SSHD_OPTS\n"
            "StandardInput=socket\nRuntimeDirectory=sshd\nRuntimeDirectoryMode=0755\n"
        )
    sysx.sh(["systemctl", f"--root={root}", "disable", "ssh.service"])
    sysx.sh(["systemctl", f"--root={root}", "enable", "ssh.socket"])
    _unlink([root / "etc/systemd/system/sshd.service"])
    dropin = root / "etc/systemd/system/ssh.socket.d"
    dropin.mkdir(parents=True, exist_ok=True)
    (dropin / "10-per-connection.conf").write_text("[Socket]\nAccept=yes\n")


def _make_debian_socket(root: Path) -> None:
    """Debian's own ssh.socket as shipped (Accept=no): the first connection starts ssh.service, which takes
    the listening socket from systemd (LISTEN_FDS); ssh.service itself is disabled."""
    if not (_usr_lib(root) / "ssh.socket").exists():
        raise HarnessError(f"{root}: this suite ships no ssh.socket")
    sysx.sh(["systemctl", f"--root={root}", "disable", "ssh.service"])
    sysx.sh(["systemctl", f"--root={root}", "enable", "ssh.socket"])
    _unlink([root / "etc/systemd/system/sshd.service"])


RHEL_SOCKET = """\
[Unit]
Description=OpenSSH Server Socket
Documentation=man:sshd(8) man:sshd_config(5)
Conflicts=sshd.service

[Socket]
ListenStream=22
Accept=yes

[Install]
WantedBy=sockets.target
"""
RHEL_PER_CONNECTION = """\
[Unit]
Description=OpenSSH per-connection server daemon
Documentation=man:sshd(8) man:sshd_config(5)
Wants=sshd-keygen.target
After=sshd-keygen.target

[Service]
EnvironmentFile=-/etc/sysconfig/sshd
ExecStart=-/usr/sbin/sshd -i $OPTIONS
StandardInput=socket
RuntimeDirectory=sshd
RuntimeDirectoryMode=0755
"""


def _make_rhel_socket(root: Path) -> None:
    """RHEL's sshd.socket (Accept=yes, Conflicts=sshd.service) and sshd@.service, as Fedora/RHEL ship them:
    the socket enabled, sshd.service disabled. Starting sshd.service would stop the socket."""
    lib = _usr_lib(root)
    (lib / "sshd.socket").write_text(RHEL_SOCKET)
    (lib / "sshd@.service").write_text(RHEL_PER_CONNECTION)
    system = root / "etc/systemd/system"
    _unlink([system / "multi-user.target.wants/sshd.service"])
    wants = system / "sockets.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / "sshd.socket").symlink_to("/usr/lib/systemd/system/sshd.socket")


# --- leftovers of any fleet (used by `down --all`) ------------------------------------------------


def down_all(*, force: bool = False, log: Any = print) -> list[int]:
    """Stop every fleet whose owner process is gone (or all with FORCE), then sweep orphans.

    Returns the ids of fleets that were left alone because their owner still runs.
    """
    kept: list[int] = []
    for data in list_fleet_states():
        fid = int(data["id"])
        if _owner_alive(data) and not force:
            log(f"fleet {fid}: owner PID {data['owner_pid']} still runs; left alone (use --force)")
            kept.append(fid)
            continue
        log(f"fleet {fid}: stopping {len(data.get('hosts', []))} host(s)")
        try:
            Fleet.load(fid).down()
        except HarnessError as exc:
            log(f"fleet {fid}: {exc}")
    _sweep_orphans(set(kept), log)
    return kept


def _sweep_orphans(keep: set[int], log: Any) -> None:
    """Remove what no state file accounts for: nspawns, control masters, mounts, links, cgroups."""
    sd = state_dir()
    # Processes: our nspawns carry --setenv=SSHD_SETUP_TESTHOSTS_FLEET=K on their command line.
    victims: dict[int, int | None] = {}
    for pid in sysx.all_pids():
        args = sysx.cmdline(pid)
        if not args:
            continue
        fid = next((a.split("=")[-1] for a in args if a.startswith(f"--setenv={MARKER_ENV}=")), None)
        is_master = args[0].startswith("ssh: ") and f"{sd}/cm" in args[0]
        if (fid is not None and fid.isdigit() and int(fid) not in keep) or (
            is_master and not any(f"{sd}/cm{k}/" in args[0] for k in keep)
        ):
            st = sysx.proc_stat(pid)
            victims[pid] = st.starttime if st else None
    for pid, start in victims.items():
        log(f"orphan process {pid}: {' '.join(sysx.cmdline(pid))[:100]}")
        sysx.signal_pid(pid, signal.SIGTERM, start)
    left = sysx.wait_dead(victims, time.monotonic() + STOP_DEADLINE)
    for pid in left:
        for kid in sysx.children_of(pid):
            sysx.kill_hard(kid)
        sysx.kill_hard(pid, victims[pid])
    sysx.wait_dead({p: victims[p] for p in left}, time.monotonic() + 10)
    # cgroups: anything left in a fleet's cgroup is ours.
    for root in sysx.cgroup_roots():
        top = root / sysx.CGROUP_GROUP
        for cg in sorted(top.glob("fleet-*")) if top.is_dir() else []:
            if cg.name.split("-")[-1].isdigit() and int(cg.name.split("-")[-1]) in keep:
                continue
            for pid in sysx.cgroup_pids(cg):
                sysx.kill_hard(pid)
            log(f"orphan cgroup {cg}")
            sysx.remove_cgroup_tree(cg)
        with contextlib.suppress(OSError), sysx.file_lock(sd / "alloc.lock"):
            top.rmdir()  # only succeeds when empty
    # Mounts: overlays whose lower layer is one of our cached trees, not used by a kept fleet.
    kept_dirs = []
    for data in list_fleet_states():
        if int(data["id"]) in keep:
            kept_dirs += [h["hostdir"] for h in data.get("hosts", [])]
    cache = str(cache_dir())
    for mp, fstype, opts in sysx.mounts_with_options():
        if fstype == "overlay" and f"lowerdir={cache}/" in opts and not any(mp.startswith(d) for d in kept_dirs):
            log(f"orphan mount {mp}")
            sysx.sh(["umount", mp], check=False)
            if mp in sysx.mountpoints():
                sysx.sh(["umount", "--lazy", mp], check=False)
    # Links: bridges sst<K> and veths vb-t<K>h<N>.
    for link in sysx.links():
        m = re.fullmatch(rf"{BRIDGE_PREFIX}(\d+)|vb-t(\d+)h\d+", link)
        if m and int(m.group(1) or m.group(2)) not in keep:
            log(f"orphan link {link}")
            sysx.sh(["ip", "link", "del", link], check=False)
    # Runtime dirs of fleets without a state file.
    for d in sorted(sd.glob("fleet-*")) + sorted(sd.glob("cm*")):
        num = re.sub(r"\D", "", d.name)
        if d.is_dir() and num.isdigit() and int(num) not in keep and not _state_file(int(num)).exists():
            if sysx.mounts_under(d):
                log(f"{d}: still has mounts; not removed")
                continue
            log(f"orphan dir {d}")
            shutil.rmtree(d, ignore_errors=True)
