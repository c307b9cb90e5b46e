"""One SSH connection to an inventory host as Fabric/paramiko objects: the route, host keys, timeouts.

The route is ssh's: the inventory's -o ProxyJump / -J / -o ProxyCommand first (command line wins), else
~/.ssh/config's (sshd_setup.sshconfig, Includes followed). A jump host chain `a,b` is Fabric gateways
(a, then b through a, then the target through b: direct-tcpip channels); a ProxyCommand runs through
`sh -c 'exec …'` as ssh runs it, with paramiko's ProxyCommand. Every hop's host key is checked against
its own known_hosts, as the target's is. A proxied host is never dialled directly.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sshd_setup.connection_vars import parse_hop, ssh_options
from sshd_setup.errors import InputError, SshdSetupError
from sshd_setup.inventory import HostEntry
from sshd_setup.sockets import tcp_connection

if TYPE_CHECKING:
    from fabric import Config, Connection
    from paramiko import PKey

T = TypeVar("T")
_MAX_HOPS = 8
_RELAXED = ("no", "off", "accept-new")


class Unreachable(SshdSetupError):
    """The host could not be reached or authenticated; its message is one line."""


@dataclass(frozen=True)
class Route:
    """How the target is reached: 'direct', 'jump' (value: the hops) or 'command' (value: the command)."""

    kind: str
    value: str = ""
    source: str = ""

    def describe(self) -> str:
        if self.kind == "jump":
            return f" via jump host {self.value}"
        return f" via ProxyCommand ({self.source})" if self.kind == "command" else ""


def _inventory_route(entry: HostEntry) -> Route | None:
    """The route entry.ssh_args give (the inventory's arguments, the source of truth), or None."""
    try:
        found = ssh_options(entry.ssh_args)
    except ValueError as exc:
        raise InputError(f"host {entry.name}: ansible_ssh_common_args", str(exc)) from None
    jump, command = found.get("proxyjump"), found.get("proxycommand")
    if jump is not None:
        return Route("direct") if jump == "none" else Route("jump", jump, "inventory")
    if command is not None:
        return Route("direct") if command.lower() == "none" else Route("command", command, "inventory")
    return None


def _config_route(found: dict[str, Any], host: str) -> Route:
    jump, command = found.get("proxyjump"), found.get("proxycommand")
    if jump and str(jump).lower() != "none":
        return Route("jump", str(jump), "ssh_config")
    if command and str(command).lower() != "none":
        return Route("command", str(command), "ssh_config")
    return Route("direct")


def goes_direct(entry: HostEntry) -> bool:
    """True when a TCP connection straight to entry.address is this host's route (for the early dial)."""
    from sshd_setup import sshconfig

    route = _inventory_route(entry)
    if route is not None:
        return route.kind == "direct"
    if not sshconfig.mentions_proxy():
        return True
    return _config_route(dict(sshconfig.ssh_config().lookup(entry.address)), entry.address).kind == "direct"


def timeout_for(entry: HostEntry, default: float) -> float:
    return entry.connection_vars.connect_timeout or default


class KnownHosts:
    """One known_hosts file, indexed by host name: built in one pass, looked up in constant time.

    paramiko.HostKeys is quadratic to load (each line is checked against every earlier one) and linear
    to look up, so a fleet of N hosts cost N^2 (seconds of CPU at 1,000 hosts with 3 keys each). The
    meaning is paramiko's: exact names and [name]:port, hashed |1| names, invalid lines skipped; only the
    lines of the host looked up are decoded into keys.
    """

    def __init__(self, text: str) -> None:
        self._plain: dict[str, list[str]] = {}
        self._hashed: list[tuple[str, str]] = []  # (hashed name, line)
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            names = line.split(None, 1)[0]
            for name in names.split(","):
                if name.startswith("|1|"):
                    self._hashed.append((name, line))
                else:
                    self._plain.setdefault(name, []).append(line)

    def lookup(self, name: str) -> list[tuple[str, Any]]:
        """(key type, paramiko key) of every entry for NAME."""
        import paramiko

        lines = list(self._plain.get(name, ()))
        lines += [line for hashed, line in self._hashed if paramiko.HostKeys.hash_host(name, hashed) == hashed]
        keys = []
        for line in lines:
            try:
                entry = paramiko.hostkeys.HostKeyEntry.from_line(line)
            except (paramiko.SSHException, paramiko.hostkeys.InvalidHostKey, ValueError):
                continue  # as paramiko: a line it cannot read trusts nothing
            if entry is not None and entry.key is not None:
                keys.append((entry.key.get_name(), entry.key))
        return keys


class _PerFile(Generic[T]):
    """Values loaded from a file once per process, and again only when it (or a companion file) changes."""

    def __init__(self, load: Callable[[str], T]) -> None:
        self._load = load
        self._values: dict[tuple[object, ...], T] = {}
        self._lock = threading.Lock()

    def get(self, path: str, *companions: str) -> T:
        key = (path, *(_file_state(p) for p in (path, *companions)))
        with self._lock:
            if key in self._values:
                return self._values[key]
        value = self._load(path)  # outside the lock: at worst two threads load the same file once each
        with self._lock:
            self._values[key] = value
        return value


def _file_state(path: str) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


# Only the host's own entries go into a client, so nothing is ever saved back to a known_hosts file.
_KNOWN_HOSTS = _PerFile(lambda path: KnownHosts(Path(path).read_text(errors="replace")))


def _secure(connection: Connection, options: dict[str, str], checking: bool) -> tuple[str, list[str]]:
    """Load this host's known keys into the connection's client and set the policy.

    Returns the name paramiko looks the host up by and the known_hosts files consulted.
    """
    import paramiko

    client = connection.client
    strict = options.get("stricthostkeychecking") or connection.ssh_config.get("stricthostkeychecking")
    if strict is not None and str(strict).lower() in _RELAXED:
        checking = False  # unknown keys accepted; a CHANGED key is still refused (BadHostKeyException)
    # As ssh: UserKnownHostsFile (inventory, then ssh_config) replaces ~/.ssh/known_hosts.
    named = options.get("userknownhostsfile") or connection.ssh_config.get("userknownhostsfile")
    user_files = str(named).split() if named else ["~/.ssh/known_hosts", "~/.ssh/known_hosts2"]
    port = connection.port or 22
    name = connection.host if port == 22 else f"[{connection.host}]:{port}"  # as paramiko looks it up
    consulted = []
    for path in [*user_files, "/etc/ssh/ssh_known_hosts"]:
        file = Path(os.path.expanduser(path))
        consulted.append(str(file))
        if file.is_file():
            for keytype, key in _KNOWN_HOSTS.get(str(file)).lookup(name):
                client.get_host_keys().add(name, keytype, key)
    client.set_missing_host_key_policy(paramiko.RejectPolicy() if checking else paramiko.AutoAddPolicy())
    return name, consulted


def _quiet_paramiko() -> None:
    """paramiko logs failures with tracebacks (to stderr via logging's last resort): we report one line."""
    logger = logging.getLogger("paramiko")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
        logger.propagate = False


_BASE_CONFIG: list[Config] = []  # at most one: the Config of the ssh_config parsed last
_BASE_CONFIG_LOCK = threading.Lock()


def _base_config() -> Config:
    """One Fabric Config per parsed ssh_config (its files read once); every connection gets a clone of it,
    never the shared object itself: a Config shared by connections races in invoke."""
    from fabric import Config

    from sshd_setup import sshconfig

    parsed = sshconfig.ssh_config()  # the same object until an ssh_config file changes
    with _BASE_CONFIG_LOCK:
        if not _BASE_CONFIG or _BASE_CONFIG[0].base_ssh_config is not parsed:
            _BASE_CONFIG[:] = [Config(ssh_config=parsed, overrides={"run": {"in_stream": False}})]
        return _BASE_CONFIG[0]


def _load_key(path: str) -> PKey | None:
    import paramiko

    try:
        return paramiko.PKey.from_path(path)
    except Exception:  # encrypted, unknown type, unreadable: paramiko's own path reports it
        return None


_KEYS = _PerFile(_load_key)


def _private_key(path: str) -> PKey | None:
    """The unencrypted private key at PATH (with its -cert.pub, as paramiko pairs them), loaded once per
    process; None when it needs a passphrase or is not a key paramiko reads: then paramiko is given the
    file and reports in its own words, as before."""
    return _KEYS.get(path, path + "-cert.pub")


class _Builder:
    def __init__(self, entry: HostEntry, checking: bool, timeout: float) -> None:
        self.entry, self.checking, self.timeout = entry, checking, timeout
        self.config = _base_config()
        self.known_hosts: dict[str, list[str]] = {}

    def _timeouts(self) -> dict[str, Any]:
        t = self.timeout
        return {"banner_timeout": t, "auth_timeout": t, "channel_timeout": t}

    def connection(self, host: str, user: str | None, port: int | None, kwargs: dict[str, Any]) -> Connection:
        from fabric import Connection

        return Connection(
            host,
            user=user,
            port=port,
            config=self.config.clone(),
            connect_timeout=max(1, round(self.timeout)),
            connect_kwargs={**self._timeouts(), **kwargs},
            gateway=False,  # never Fabric's own chain: its hop order is reversed and it accepts any host key
        )

    def hop(self, spec: str, depth: int) -> Connection:
        try:
            user, host, port = parse_hop(spec)
        except ValueError as exc:
            raise InputError(self.entry.name, f"ProxyJump hop {spec!r} (from ssh_config): {exc}") from None
        hop = self.connection(host, user, port, {})
        if depth == 0:  # only the first hop's own ssh_config route applies (ssh -J rest reaches the others)
            own = _config_route(dict(hop.ssh_config), hop.host)
            if own.kind == "jump" and parse_hop(own.value.split(",")[0])[1] in (host, hop.host):
                own = Route("direct")  # `Host 10.0.0.*` + `ProxyJump 10.0.0.1` matching the jump host itself
            self.route(hop, own, depth + 1)
        self.secure(hop, {})
        return hop

    def secure(self, connection: Connection, options: dict[str, str]) -> None:
        name, files = _secure(connection, options, self.checking)
        self.known_hosts[name] = files

    def route(self, connection: Connection, route: Route, depth: int) -> None:
        if depth > _MAX_HOPS:
            raise InputError(self.entry.name, "ProxyJump chain too long or a loop in ssh_config")
        if route.kind == "command":
            shell = os.environ.get("SHELL") or "/bin/sh"
            # %h and %p are expanded by paramiko; %r is the user we log in as (paramiko would take ours)
            command = re.sub(r"(?<!%)%r", lambda _: str(connection.user), route.value)
            connection.gateway = f"{shlex.quote(shell)} -c {shlex.quote('exec ' + command)}"
        elif route.kind == "jump":
            previous: Connection | None = None
            for index, spec in enumerate(route.value.split(",")):
                hop = self.hop(spec.strip(), depth + index)
                if previous is not None:
                    hop.gateway = previous
                previous = hop
            connection.gateway = previous
        else:
            connection.gateway = False

    def target(self) -> tuple[Connection, Route]:
        entry = self.entry
        kwargs: dict[str, Any] = {}
        if entry.key_file:
            key = _private_key(entry.key_file)
            if key is not None:
                kwargs["pkey"] = key  # parsed once for the whole fleet, not per login
            else:
                kwargs["key_filename"] = [entry.key_file]
            kwargs["look_for_keys"] = False
        if entry.connection_vars.password is not None:
            kwargs["password"] = entry.connection_vars.password
        connection = self.connection(entry.address, entry.user, entry.port, kwargs)
        route = _inventory_route(entry) or _config_route(dict(connection.ssh_config), connection.host)
        self.route(connection, route, 0)
        options = {}
        for name, value in ssh_options(entry.ssh_args).items():
            if name in ("stricthostkeychecking", "userknownhostsfile") and value:
                options[name] = value
        self.secure(connection, options)
        return connection, route


def open_connection(
    entry: HostEntry, checking: bool, timeout: float, early: Any = None, early_error: OSError | None = None
) -> Connection:
    """A connected Fabric Connection to ENTRY; EARLY: a TCP socket already dialled to its address (or None),
    EARLY_ERROR: why that dial failed (raised if the route is that very connection).

    Every failure is Unreachable with one line; an input problem in ssh_config is InputError.
    """
    import paramiko

    _quiet_paramiko()
    builder = _Builder(entry, checking, timeout)
    try:
        connection, route = builder.target()
    except BaseException:
        if early is not None:
            early.close()
        raise
    where = f"{entry.address}{route.describe()}"
    banner: str | None = None
    target = (connection.host, connection.port or 22)
    if route.kind != "direct" or target != (entry.address, entry.port or 22):
        if early is not None:
            early.close()
        early, early_error = None, None
    try:
        if early_error is not None:
            raise early_error
        if route.kind == "direct":
            connection.connect_kwargs["sock"] = early or tcp_connection(*target, timeout)
        try:
            connection.open()
        except BaseException:  # do not leave sockets, proxy processes and transport threads behind
            banner = getattr(connection.client.get_transport(), "remote_version", None)
            _close(connection)
            sock = connection.connect_kwargs.get("sock")
            if sock is not None:
                sock.close()
            raise
    except paramiko.BadHostKeyException as exc:
        named = ", ".join(builder.known_hosts.get(exc.hostname, []))
        raise Unreachable(
            f"host key of {exc.hostname} does not match {named or 'known_hosts'}: refusing to connect"
            " (if the host was reinstalled, remove its old line there)"
        ) from None
    except paramiko.SSHException as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if text == "No existing session":  # paramiko's word for a handshake its thread gave up on
            text = "Error reading SSH protocol banner" if not banner else "the SSH handshake did not finish"
        if "not found in known_hosts" in text:
            host = text.split()[1].strip("'") if len(text.split()) > 1 else entry.address
            consulted = builder.known_hosts.get(host, [])
            text = (
                f"host key of {host} is not in {', '.join(consulted) or 'known_hosts'}"
                " (add it there, or pass --no-host-key-checking)"
            )
        elif "protocol banner" in text.lower():
            text = f"no SSH banner within {timeout:.0f}s (is it an SSH server? raise --timeout if it is slow)"
        raise Unreachable(f"ssh to {where}: {text}") from None
    except (TimeoutError, OSError, EOFError) as exc:
        port = connection.port or 22
        detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        if isinstance(exc, ConnectionRefusedError):
            detail = f"connection refused: sshd is not running or not listening on port {port}"
        elif isinstance(exc, TimeoutError):
            detail = f"no answer within {timeout:.0f}s (raise --timeout if the host is slow)"
        raise Unreachable(f"ssh to {entry.address}:{port}{route.describe()}: {detail}") from None
    return connection


def close_connection(connection: Connection) -> None:
    """Close the connection and every jump host connection it went through."""
    _close(connection)


def _close(connection: Connection) -> None:
    gateway = connection.gateway
    connection.client.close()
    while gateway and not isinstance(gateway, str):
        gateway.client.close()
        gateway = gateway.gateway


def check_key_files(hosts: list[HostEntry]) -> None:
    """Every ansible_ssh_private_key_file of HOSTS exists and is readable: InputError before any contact."""
    for entry in hosts:
        if entry.is_local or not entry.key_file:
            continue
        where = f"host {entry.name}: ansible_ssh_private_key_file"
        try:
            with open(entry.key_file, "rb") as key:
                key.read(1)
        except FileNotFoundError:
            raise InputError(where, f"{entry.key_file} does not exist") from None
        except IsADirectoryError:
            raise InputError(where, f"{entry.key_file} is a directory, not a key file") from None
        except OSError as exc:
            raise InputError(where, f"cannot read {entry.key_file}: {exc.strerror or exc}") from None
