"""How commands reach a host: one SSH connection per host (Fabric/paramiko), or this machine itself.

A command is a shell script sent on standard input to `sh -s` (through sudo when the inventory says
become), so file contents never travel as command-line arguments and nothing is interpolated into a
shell string by the remote side.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sshd_setup.errors import SshdSetupError
from sshd_setup.inventory import HostEntry
from sshd_setup.sockets import Dial, tcp_connection


class Unreachable(SshdSetupError):
    """The host could not be reached or authenticated; its message is one line."""


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass(frozen=True)
class ConnectOptions:
    host_key_checking: bool = True
    become_password: str | None = field(default=None, repr=False)
    connect_timeout: float = 10.0
    command_timeout: float = 180.0


class Shell(Protocol):
    def run(self, script: str) -> CommandResult:
        """Send a script whose last output line is `@@END`; its output up to there. The shell stays."""
        ...

    def finish(self, script: str = "") -> CommandResult:
        """Send the last script (none: just end), end the input; its output and the shell's exit status."""
        ...

    def close(self) -> None: ...


def _grouped(script: str) -> bytes:
    """The script as one command reading nothing from the session's input (that carries the next script)."""
    return ("{\n" + script.rstrip("\n") + "\n} </dev/null\n").encode("utf-8", "surrogateescape")


class Transport(Protocol):
    round_trips: int

    @property
    def sshd_version(self) -> str:
        """'OpenSSH_9.2p1 Debian-2+deb12u3' from the server's banner; '' when unknown."""
        ...

    def run_script(self, script: str, timeout: float | None = None) -> CommandResult: ...

    def probe(self) -> bool:
        """Run a shell builtin as the login user (no sudo): True when a session works."""
        ...

    def shell(self) -> Shell:
        """One shell on the host for several scripts in a row (one session, one sh, one sudo)."""
        ...

    def close(self) -> None: ...


def _shell_command(become: bool, password: str | None, user: str | None) -> tuple[str, str]:
    """The remote command line and the prefix of its stdin (a sudo password, if any)."""
    if not become or user == "root":
        return "sh -s", ""
    if password is None:
        return "sudo -n -- sh -s", ""
    return "sudo -S -p '' -- sh -s", password + "\n"


def _ssh_option(args: tuple[str, ...], name: str) -> str | None:
    """The value of `-o Name=value` (or `-o Name value`) in ansible_ssh_common_args."""
    wanted = name.lower()
    for index, arg in enumerate(args):
        option = None
        if arg == "-o" and index + 1 < len(args):
            option = args[index + 1]
        elif arg.startswith("-o") and len(arg) > 2:
            option = arg[2:]
        if option is None:
            continue
        key, _, value = option.replace("=", " ", 1).partition(" ")
        if key.lower() == wanted:
            return value.strip()
    return None


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


_KNOWN_HOSTS: dict[tuple[str, int, int], KnownHosts] = {}
_KNOWN_HOSTS_LOCK = threading.Lock()


def _known_hosts(file: Path) -> KnownHosts:
    """FILE indexed once per process (and again only if it changes).

    Only this host's entries go into the client, so nothing is ever saved back to a known_hosts file.
    """
    stat = file.stat()
    cache_key = (str(file), stat.st_mtime_ns, stat.st_size)
    with _KNOWN_HOSTS_LOCK:
        keys = _KNOWN_HOSTS.get(cache_key)
        if keys is None:
            keys = _KNOWN_HOSTS[cache_key] = KnownHosts(file.read_text(errors="replace"))
    return keys


_SSH_CONFIG: list[Any] = []
_SSH_CONFIG_LOCK = threading.Lock()


def _fabric_config() -> Any:
    """A new Fabric Config for one connection, over ~/.ssh/config and /etc/ssh/ssh_config parsed once.

    A Config per host re-read and re-parsed both files for every host; one Config shared by all threads
    is not safe (invoke's lazy merging raced). The parsed paramiko SSHConfig is only read (lookup).
    """
    from fabric import Config

    with _SSH_CONFIG_LOCK:
        if not _SSH_CONFIG:
            _SSH_CONFIG.append(Config(overrides={"load_ssh_configs": True}).base_ssh_config)
        parsed = _SSH_CONFIG[0]
    return Config(overrides={"run": {"in_stream": False}, "load_ssh_configs": True}, ssh_config=parsed)


def openssh_version(banner: str) -> str:
    """'OpenSSH_9.2p1 Debian-2+deb12u3' from 'SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3'; '' for anything else.

    A banner without a version number (patched or trimmed) leaves the question to `sshd -V` on the host.
    """
    version = banner.removeprefix("SSH-2.0-")
    return version if re.match(r"OpenSSH_\d+\.\d+", version) and version.isprintable() else ""


def host_key_checking_default() -> bool:
    value = os.environ.get("ANSIBLE_HOST_KEY_CHECKING", "true").lower()
    return value not in ("false", "no", "0", "off")


class SshTransport:
    def __init__(self, entry: HostEntry, options: ConnectOptions, dial: Dial | None = None) -> None:
        self.entry = entry
        self.options = options
        self.round_trips = 0
        self._connection: Any = None
        self._dial = dial

    def connect(self) -> SshTransport:
        entry = self.entry
        # Dial first, import later: the host spends the ~80 ms our first paramiko/fabric import takes
        # starting its sshd for us. Used only if ssh_config (read below) leaves address and port as they are.
        early: Any = None
        early_error: OSError | None = None
        try:
            if self._dial is not None:  # started by the fleet run before its workers
                early = self._dial.finish(self.options.connect_timeout)
            else:
                early = tcp_connection(entry.address, entry.port or 22, self.options.connect_timeout)
        except OSError as exc:
            early_error = exc

        try:
            return self._handshake(early, early_error)
        except BaseException:
            if early is not None and self._connection is None:
                early.close()
            raise

    def _handshake(self, early: Any, early_error: OSError | None) -> SshTransport:
        import paramiko
        from fabric import Connection

        entry = self.entry
        connect_kwargs: dict[str, Any] = {}
        if entry.key_file:
            connect_kwargs["key_filename"] = [entry.key_file]
            connect_kwargs["look_for_keys"] = False
        connection = Connection(
            entry.address,
            user=entry.user,
            port=entry.port,
            config=_fabric_config(),
            connect_timeout=self.options.connect_timeout,
            connect_kwargs=connect_kwargs,
        )
        client = connection.client
        checking = self.options.host_key_checking
        strict = _ssh_option(entry.ssh_args, "StrictHostKeyChecking")
        if strict is not None and strict.lower() in ("no", "off", "accept-new"):
            checking = False  # unknown keys accepted; a CHANGED key is still refused (BadHostKeyException)
        # As ssh: UserKnownHostsFile (inventory, then ~/.ssh/config) replaces ~/.ssh/known_hosts.
        named = _ssh_option(entry.ssh_args, "UserKnownHostsFile") or connection.ssh_config.get("userknownhostsfile")
        user_files = str(named).split() if named else ["~/.ssh/known_hosts", "~/.ssh/known_hosts2"]
        port = connection.port or 22
        name = connection.host if port == 22 else f"[{connection.host}]:{port}"  # as paramiko looks it up
        for path in [*user_files, "/etc/ssh/ssh_known_hosts"]:
            file = Path(os.path.expanduser(path))
            if file.is_file():
                for keytype, key in _known_hosts(file).lookup(name):
                    client.get_host_keys().add(name, keytype, key)
        client.set_missing_host_key_policy(paramiko.RejectPolicy() if checking else paramiko.AutoAddPolicy())
        try:
            target = (connection.host, connection.port or 22)
            if connection.gateway or target != (entry.address, entry.port or 22):
                if early is not None:
                    early.close()
                early, early_error = None, None
            if early_error is not None:
                raise early_error
            if not connection.gateway:  # a ProxyJump/ProxyCommand brings its own socket
                timeout = self.options.connect_timeout
                connection.connect_kwargs["sock"] = early or tcp_connection(*target, timeout)
            try:
                connection.open()
            except BaseException:  # do not leave the socket and the transport thread behind
                client.close()
                sock = connection.connect_kwargs.get("sock")
                if sock is not None:
                    sock.close()
                raise
        except paramiko.BadHostKeyException:
            raise Unreachable(f"host key of {entry.address} does not match known_hosts: refusing to connect") from None
        except paramiko.SSHException as exc:
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if "not found in known_hosts" in text:
                text += " (add it to known_hosts, or set ANSIBLE_HOST_KEY_CHECKING=False)"
            raise Unreachable(f"ssh to {entry.address}: {text}") from None
        except (TimeoutError, OSError) as exc:
            raise Unreachable(f"ssh to {entry.address}:{entry.port or 22}: {exc.strerror or exc}") from None
        self._connection = connection
        return self

    @property
    def sshd_version(self) -> str:
        return openssh_version(str(getattr(self._connection.transport, "remote_version", "") or ""))

    def probe(self) -> bool:
        from paramiko import SSHException

        self.round_trips += 1
        try:
            channel = self._connection.transport.open_session(timeout=self.options.connect_timeout)
        except (OSError, EOFError, SSHException) as exc:
            raise Unreachable(f"connection to {self.entry.address}: no session: {exc}") from None
        try:
            channel.exec_command("exit 0")
            if not channel.status_event.wait(self.options.connect_timeout):
                raise Unreachable(f"{self.entry.address} did not answer a new session's `exit 0` in time")
            return bool(channel.exit_status == 0)
        except (OSError, EOFError) as exc:
            raise Unreachable(f"connection to {self.entry.address} lost: {exc}") from None
        finally:
            channel.close()

    def run_script(self, script: str, timeout: float | None = None) -> CommandResult:
        self.round_trips += 1
        channel = self._start_shell()
        try:
            self._send(channel, script.encode("utf-8", "surrogateescape"))
            return self._finish(channel, timeout)
        finally:
            channel.close()

    def shell(self) -> SshShell:
        return SshShell(self, self._start_shell())

    def _start_shell(self) -> Any:
        """A session running `sh -s` (through sudo when the inventory says become), the password sent."""
        from paramiko import SSHException

        command, prefix = _shell_command(self.entry.become, self.options.become_password, self.entry.user)
        try:
            channel = self._connection.transport.open_session(timeout=self.options.connect_timeout)
            channel.exec_command(command)
            if prefix:
                channel.sendall(prefix.encode("utf-8", "surrogateescape"))
        except (OSError, EOFError, SSHException) as exc:
            raise Unreachable(f"connection to {self.entry.address} lost: {exc}") from None
        return channel

    def _send(self, channel: Any, data: bytes) -> None:
        from paramiko import SSHException

        try:
            channel.sendall(data)
        except (OSError, EOFError, SSHException) as exc:
            raise Unreachable(f"connection to {self.entry.address} lost: {exc}") from None

    def _read(self, channel: Any, timeout: float | None, until_end_record: bool = False) -> tuple[bytes, bytes]:
        """stdout to its end (or to an `@@END` line), and stderr: blocking reads, no polling, one deadline."""
        from paramiko import SSHException

        limit = timeout or self.options.command_timeout
        deadline = time.monotonic() + limit

        def drain(read: Any, stop: Callable[[bytearray], bool]) -> bytes:
            data = bytearray()
            while True:
                channel.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = read(65536)
                if not chunk:
                    return bytes(data)
                data += chunk
                if stop(data):
                    return bytes(data)

        try:
            if until_end_record:
                stdout = drain(channel.recv, lambda data: data.endswith(b"\n@@END\n") or data == b"@@END\n")
                stderr = bytearray()
                while channel.recv_stderr_ready():
                    stderr += channel.recv_stderr(65536)
                return stdout, bytes(stderr)
            # stdout first, then stderr: paramiko buffers stderr meanwhile (our scripts write little there)
            return drain(channel.recv, lambda data: False), drain(channel.recv_stderr, lambda data: False)
        except TimeoutError:
            raise Unreachable(f"command on {self.entry.address} did not finish within {limit:.0f}s") from None
        except (OSError, EOFError, SSHException) as exc:
            raise Unreachable(f"connection to {self.entry.address} lost: {exc}") from None

    def _finish(self, channel: Any, timeout: float | None = None) -> CommandResult:
        """End the input, read everything, wait for the exit status."""
        limit = timeout or self.options.command_timeout
        deadline = time.monotonic() + limit
        channel.shutdown_write()
        stdout, stderr = self._read(channel, timeout)
        if not channel.status_event.wait(max(0.01, deadline - time.monotonic())):
            raise Unreachable(f"command on {self.entry.address} did not finish within {limit:.0f}s")
        return CommandResult(
            channel.exit_status, stdout.decode("utf-8", "surrogateescape"), stderr.decode("utf-8", "replace")
        )

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class SshShell:
    """Scripts sent one after the other to one `sh -s` on the host: facts, then (maybe) the apply script.

    Saves the host a session, a login shell and a sh (and sudo) per further script; the round trips stay.
    """

    def __init__(self, owner: SshTransport, channel: Any) -> None:
        self._owner = owner
        self._channel = channel

    def run(self, script: str) -> CommandResult:
        self._owner.round_trips += 1
        self._owner._send(self._channel, _grouped(script))
        stdout, stderr = self._owner._read(self._channel, None, until_end_record=True)
        text = stdout.decode("utf-8", "surrogateescape")
        if text.endswith("@@END\n"):
            return CommandResult(0, text, stderr.decode("utf-8", "replace"))
        # the shell ended early (sudo refused, no sh, ...): its exit status and all it said
        rest = self._owner._finish(self._channel)
        return CommandResult(rest.returncode, text + rest.stdout, stderr.decode("utf-8", "replace") + rest.stderr)

    def finish(self, script: str = "") -> CommandResult:
        if not script:
            self.close()
            return CommandResult(0, "", "")
        self._owner.round_trips += 1
        self._owner._send(self._channel, _grouped(script))
        try:
            return self._owner._finish(self._channel)
        finally:
            self.close()

    def close(self) -> None:
        self._channel.close()


class _SeparateScripts:
    """Shell for the local connection: each script its own process."""

    def __init__(self, owner: LocalTransport) -> None:
        self._owner = owner

    def run(self, script: str) -> CommandResult:
        return self._owner.run_script(script)

    def finish(self, script: str = "") -> CommandResult:
        return self._owner.run_script(script) if script else CommandResult(0, "", "")

    def close(self) -> None:
        return None


class LocalTransport:
    """ansible_connection: local — act on this machine without SSH."""

    def __init__(self, entry: HostEntry, options: ConnectOptions) -> None:
        self.entry = entry
        self.options = options
        self.round_trips = 0

    def connect(self) -> LocalTransport:
        return self

    @property
    def sshd_version(self) -> str:
        return ""

    def probe(self) -> bool:
        self.round_trips += 1
        return True

    def shell(self) -> _SeparateScripts:
        return _SeparateScripts(self)

    def run_script(self, script: str, timeout: float | None = None) -> CommandResult:
        command, prefix = _shell_command(self.entry.become and os.geteuid() != 0, self.options.become_password, None)
        self.round_trips += 1
        proc = subprocess.run(
            shlex.split(command),
            input=(prefix + script).encode("utf-8", "surrogateescape"),
            capture_output=True,
            timeout=timeout or self.options.command_timeout,
        )
        return CommandResult(
            proc.returncode, proc.stdout.decode("utf-8", "surrogateescape"), proc.stderr.decode("utf-8", "replace")
        )

    def close(self) -> None:
        return None


def connect(entry: HostEntry, options: ConnectOptions, dial: Dial | None = None) -> SshTransport | LocalTransport:
    """A connected transport; `dial`: this host's TCP connection, already started (see sockets.Dial)."""
    if entry.is_local:
        return LocalTransport(entry, options).connect()
    return SshTransport(entry, options, dial).connect()
