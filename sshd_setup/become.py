"""sudo with a password that never reaches a shell: sent on sudo's stdin only when sudo asks for it.

The command is `sudo -S -p PROMPT -- sh -c 'echo MARKER && exec sh -s'` with a PROMPT and a MARKER unique
to this process. Nothing is sent until one of them shows: PROMPT on stderr means sudo waits for the
password (we send it, once); MARKER on stdout means the root shell runs and reads its input from now on
(sudo needed no password: NOPASSWD or a cached ticket, and the password is never sent). A second PROMPT
means a wrong password: the session is closed, nothing more is sent. Without a password: `sudo -n`, which
fails instead of asking. As Ansible's sudo become does, with its `-p` prompt.
"""

from __future__ import annotations

import os
import secrets
import select
import shlex
import subprocess
import time
from typing import Any, Protocol

from sshd_setup.errors import SshdSetupError

_TOKEN = secrets.token_hex(8)
PROMPT = f"[sshd-setup sudo password {_TOKEN}]"
MARKER = f"sshd-setup-become-{_TOKEN}"


class BecomeError(SshdSetupError):
    """sudo refused, did not ask as expected, or ended: one line, never the password."""


def shell_command(password_known: bool) -> str:
    """`sh -s` as root through sudo; with a password, MARKER first (see the module doc)."""
    if not password_known:
        return "sudo -n -- sh -s"
    return f"sudo -S -p {shlex.quote(PROMPT)} -- sh -c {shlex.quote(f'echo {MARKER} && exec sh -s')}"


def command_as_root(command: str, password_known: bool) -> str:
    """COMMAND (already a quoted shell command line) run by /bin/sh as root through sudo, as shell_command."""
    if not password_known:
        return f"sudo -n /bin/sh -c {shlex.quote(command)}"
    inner = f'echo {MARKER} && exec /bin/sh -c "$1"'
    return f"sudo -S -p {shlex.quote(PROMPT)} -- sh -c {shlex.quote(inner)} sh {shlex.quote(command)}"


class Streams(Protocol):
    def read(self, wait: float) -> tuple[bytes, bytes, bool]:
        """What arrived on stdout and stderr within WAIT seconds, and whether both have ended."""
        ...

    def send(self, data: bytes) -> None: ...


def await_root_shell(streams: Streams, password: str, timeout: float) -> tuple[bytes, bytes]:
    """Wait for MARKER, sending PASSWORD once when sudo prompts; stdout after the marker line, and stderr
    after sudo's last prompt (what the command may already have written there).

    Raises BecomeError when sudo prompts again (wrong password), ends, or neither asks nor starts in time.
    """
    out, err = bytearray(), bytearray()
    prompt, marker = PROMPT.encode(), MARKER.encode() + b"\n"
    sent = False
    deadline = time.monotonic() + timeout
    while True:
        chunk_out, chunk_err, ended = streams.read(max(0.0, min(0.05, deadline - time.monotonic())))
        out += chunk_out
        err += chunk_err
        if marker in out:
            after_prompt = err[err.rindex(prompt) + len(prompt) :] if prompt in err else err
            return bytes(out[out.index(marker) + len(marker) :]), bytes(after_prompt)
        asked = err.count(prompt)
        if asked > 1:
            raise BecomeError("sudo refused the become password (from ansible_become_password or -K)")
        if asked == 1 and not sent:
            streams.send(password.encode("utf-8", "surrogateescape") + b"\n")
            sent = True
        if ended:
            said = _last_line(err.replace(prompt, b""))
            if b"incorrect password" in err or b"Sorry, try again" in err:
                raise BecomeError("sudo refused the become password (from ansible_become_password or -K)")
            raise BecomeError(f"sudo ended before starting a root shell: {said or 'no message'}")
        if time.monotonic() >= deadline:
            said = _last_line(err.replace(prompt, b""))
            hint = f" (it said: {said})" if said else ""
            raise BecomeError(f"sudo neither asked for the password nor started a shell within {timeout:.0f}s{hint}")


def _last_line(data: bytes | bytearray) -> str:
    lines = [line.strip() for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


class ChannelStreams:
    """Streams over a paramiko channel."""

    def __init__(self, channel: Any) -> None:
        self._channel = channel

    def read(self, wait: float) -> tuple[bytes, bytes, bool]:
        channel = self._channel
        deadline = time.monotonic() + wait
        pause = 0.001
        while True:
            out = channel.recv(65536) if channel.recv_ready() else b""
            err = channel.recv_stderr(65536) if channel.recv_stderr_ready() else b""
            ended = channel.exit_status_ready() and not channel.recv_ready() and not channel.recv_stderr_ready()
            if out or err or ended or time.monotonic() >= deadline:
                return out, err, ended
            time.sleep(pause)
            pause = min(pause * 2, 0.01)

    def send(self, data: bytes) -> None:
        self._channel.sendall(data)


class ProcessStreams:
    """Streams over a local process's pipes."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None and proc.stderr is not None and proc.stdin is not None
        self._proc = proc
        self._open = {proc.stdout.fileno(): b"out", proc.stderr.fileno(): b"err"}

    def read(self, wait: float) -> tuple[bytes, bytes, bool]:
        out, err = b"", b""
        if self._open:
            ready, _, _ = select.select(list(self._open), [], [], wait)
            for fd in ready:
                data = os.read(fd, 65536)
                if not data:
                    del self._open[fd]
                elif self._open[fd] == b"out":
                    out += data
                else:
                    err += data
        return out, err, not self._open and self._proc.poll() is not None

    def send(self, data: bytes) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(data)
        self._proc.stdin.flush()
