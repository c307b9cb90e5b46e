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
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sshd_setup import become
from sshd_setup.inventory import HostEntry
from sshd_setup.sockets import Dial, tcp_connection
from sshd_setup.sshclient import Unreachable, close_connection, goes_direct, open_connection, timeout_for

__all__ = ["CommandResult", "ConnectOptions", "Shell", "Transport", "Unreachable", "connect"]


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


class Transports(Protocol):
    """Where a host's connections come from when they are not ours (e.g. Ansible's: sshd_setup/delegated.py)."""

    def session(self, entry: HostEntry, options: ConnectOptions) -> Transport:
        """The connection facts, apply and restore scripts go through."""
        ...

    def new_login(self, entry: HostEntry, options: ConnectOptions) -> Transport:
        """A NEW login with the same credentials (the lockout guard): never a channel of an existing connection."""
        ...


def _shell_command(become_root: bool, password: str | None, user: str | None) -> str:
    """The remote command line: sh, or sh as root through sudo (see sshd_setup.become)."""
    if not become_root or user == "root":
        return "sh -s"
    return become.shell_command(password is not None)


def become_password(entry: HostEntry, options: ConnectOptions) -> str | None:
    """The sudo password: the inventory's ansible_become_password wins over -K, as in Ansible."""
    return entry.connection_vars.become_password or options.become_password


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
        timeout = timeout_for(entry, self.options.connect_timeout)
        # Dial first, import later: the host spends the ~80 ms our first paramiko/fabric import takes
        # starting its sshd for us. Never for a host reached through a jump host or a proxy command.
        early: Any = None
        early_error: OSError | None = None
        try:
            if self._dial is not None:  # started by the fleet run before its workers (direct hosts only)
                early = self._dial.finish(timeout)
            elif goes_direct(entry):
                early = tcp_connection(entry.address, entry.port or 22, timeout)
        except OSError as exc:
            early_error = exc
        checking = self.options.host_key_checking and entry.connection_vars.host_key_checking is not False
        self._connection = open_connection(entry, checking, timeout, early, early_error)
        return self

    @property
    def sshd_version(self) -> str:
        return openssh_version(str(getattr(self._connection.transport, "remote_version", "") or ""))

    @property
    def login_user(self) -> str:
        """The user this connection logged in as (the inventory's, ~/.ssh/config's or the local one)."""
        return str(self._connection.user or "")

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

        password = become_password(self.entry, self.options)
        command = _shell_command(self.entry.become, password, self.entry.user)
        try:
            channel = self._connection.transport.open_session(timeout=self.options.connect_timeout)
            channel.exec_command(command)
            if password is not None and command != "sh -s":  # only when sudo prompts (sshd_setup.become)
                streams = become.ChannelStreams(channel)
                rest, _ = become.await_root_shell(streams, password, max(30.0, self.options.connect_timeout))
                if rest:
                    raise Unreachable(f"{self.entry.address}: unexpected output after sudo started the shell")
        except become.BecomeError as exc:
            channel.close()
            raise Unreachable(f"{self.entry.address}: {exc}") from None
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
            close_connection(self._connection)
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


class RunsScripts(Protocol):
    def run_script(self, script: str, timeout: float | None = None) -> CommandResult: ...


class SeparateScripts:
    """A Shell over a connection that runs each script on its own (the local one, another owner's)."""

    def __init__(self, owner: RunsScripts) -> None:
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

    def shell(self) -> SeparateScripts:
        return SeparateScripts(self)

    def run_script(self, script: str, timeout: float | None = None) -> CommandResult:
        password = become_password(self.entry, self.options)
        command = _shell_command(self.entry.become and os.geteuid() != 0, password, None)
        self.round_trips += 1
        limit = timeout or self.options.command_timeout
        # Its own process group: a timeout kills the script AND what it started (a child holding the pipes
        # would otherwise keep communicate() waiting past the timeout).
        with subprocess.Popen(
            shlex.split(command),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        ) as proc:
            head, head_err = b"", b""
            if password is not None and command != "sh -s":  # only when sudo prompts (sshd_setup.become)
                try:
                    head, head_err = become.await_root_shell(become.ProcessStreams(proc), password, limit)
                except become.BecomeError as exc:
                    _kill_group(proc)
                    return CommandResult(1, "", str(exc))
            try:
                stdout, stderr = proc.communicate(script.encode("utf-8", "surrogateescape"), timeout=limit)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                raise Unreachable(f"local command did not finish within {limit:.0f}s") from None
        return CommandResult(
            proc.returncode,
            (head + stdout).decode("utf-8", "surrogateescape"),
            (head_err + stderr).decode("utf-8", "replace"),
        )

    def close(self) -> None:
        return None


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    import contextlib
    import signal

    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()


def connect(entry: HostEntry, options: ConnectOptions, dial: Dial | None = None) -> SshTransport | LocalTransport:
    """A connected transport; `dial`: this host's TCP connection, already started (see sockets.Dial)."""
    if entry.is_local:
        return LocalTransport(entry, options).connect()
    return SshTransport(entry, options, dial).connect()
