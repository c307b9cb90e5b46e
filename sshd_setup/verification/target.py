"""One inventory host under verification: its testinfra connection and what was read from it (cached).

Everything a check needs from the host is read here, once per host, and a failure to read it fails the
check with one line (never a traceback): "sshd -T failed: …", "cannot read /etc/ssh/ca.pub: …".
"""

from __future__ import annotations

import functools
import shlex
import socket
from dataclasses import dataclass
from typing import Any

import paramiko
import pytest

from sshd_setup.assessment import Assessment, assess
from sshd_setup.core.desired import Desired
from sshd_setup.core.facts import HostFacts
from sshd_setup.core.service import ServicePlan, service_plan
from sshd_setup.gather import FactsError, facts_script, parse_facts
from sshd_setup.inventory import HostEntry
from sshd_setup.sshclient import Unreachable
from sshd_setup.verification.checks import EffectiveConfig, parse_sshd_t
from sshd_setup.verification.connection import make_host

SBIN_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class HostUnreachable(Exception):
    """The host could not be reached or logged in to; the message is one line."""


def fail(reason: str) -> None:
    """Fail the current check with exactly this reason (no traceback: the reason is the report)."""
    pytest.fail(reason, pytrace=False)


def expect_none(problems: list[str]) -> None:
    """Fail the current check when there is any problem; all of them, joined, are the reason."""
    if problems:
        fail("; ".join(problems))


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def describe_connect_error(entry: HostEntry, exc: BaseException) -> str:
    where = f"{entry.address}:{entry.port or 22}"
    if isinstance(exc, paramiko.BadHostKeyException):
        return f"host key of {entry.address} does not match known_hosts: refusing to connect"
    if isinstance(exc, paramiko.AuthenticationException):
        return f"ssh to {where}: authentication failed as {entry.user or 'the current user'} ({exc})"
    if isinstance(exc, ConnectionRefusedError | paramiko.ssh_exception.NoValidConnectionsError):
        return f"ssh to {where}: connection refused: sshd is not running or not listening on port {entry.port or 22}"
    if isinstance(exc, paramiko.SSHException):
        text = _first_line(str(exc)) or type(exc).__name__
        if "not found in known_hosts" in text:
            text += " (add it to known_hosts, or set ANSIBLE_HOST_KEY_CHECKING=False)"
        return f"ssh to {where}: {text}"
    if isinstance(exc, socket.timeout | TimeoutError):
        return f"ssh to {where}: timed out"
    if isinstance(exc, OSError):
        return f"ssh to {where}: {exc.strerror or exc}"
    return f"ssh to {where}: {type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class Run:
    rc: int
    stdout: str
    stderr: str


class VerifyHost:
    def __init__(
        self,
        entry: HostEntry,
        host_key_checking: bool | None = None,
        allow: frozenset[str] = frozenset(),
        timeout: float = 10.0,
    ):
        self.entry = entry
        self.allow = allow
        self.host: Any = make_host(entry, host_key_checking, timeout)
        self.unreachable: str | None = None

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def desired(self) -> Desired:
        return self.entry.desired

    def connect(self) -> None:
        """Open the connection now; raise HostUnreachable with one line when that is impossible."""
        try:
            result = self.host.run("true")
        except Unreachable as exc:  # the route, host key, banner, timeout: already one line
            self.unreachable = str(exc)
            raise HostUnreachable(self.unreachable) from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self.unreachable = describe_connect_error(self.entry, exc)
            raise HostUnreachable(self.unreachable) from None
        if result.rc != 0:
            why = _first_line(result.stderr) or f"exit {result.rc}"
            self.unreachable = f"logged in but cannot run commands{' with sudo' if self._sudo else ''}: {why}"
            raise HostUnreachable(self.unreachable)

    @property
    def _sudo(self) -> bool:
        return bool(getattr(self.host.backend, "sudo", False))

    def close(self) -> None:
        """Close the SSH connection; a later command would open a new one."""
        close_all = getattr(self.host.backend, "close_all", None)
        if close_all is not None:
            close_all()
            return
        client = self.host.backend.__dict__.pop("client", None)  # the backend's cached_property
        if client is not None:
            client.close()

    def run(self, command: str) -> Run:
        """Run a POSIX sh command (through sudo -n when the inventory says become)."""
        result = self.host.run("/bin/sh -c " + shlex.quote(command))
        return Run(result.rc, result.stdout, result.stderr)

    # ------------------------------------------------------------ facts + plan + findings (as `check`)

    @functools.cached_property
    def facts_output(self) -> str:
        result = self.run(facts_script(self.desired, login_user=self.entry.user or ""))
        if result.rc != 0 and "@@END" not in result.stdout:
            fail(f"facts command failed (exit {result.rc}): {_first_line(result.stderr)}")
        return result.stdout

    @functools.cached_property
    def facts(self) -> HostFacts:
        try:
            return parse_facts(self.facts_output)[0]
        except FactsError as exc:
            fail(f"facts: {exc}")
            raise  # unreachable: fail() raises

    @functools.cached_property
    def assessment(self) -> Assessment:
        self.facts  # noqa: B018  (a FactsError fails the check with its reason first)
        return assess(self.entry, self.facts_output, "" if self.entry.is_local else self.entry.user or "")

    @functools.cached_property
    def service(self) -> ServicePlan:
        return service_plan(self.facts)

    # ------------------------------------------------------------ files

    def read(self, path: str) -> str:
        result = self.run(f"cat -- {shlex.quote(path)}")
        if result.rc != 0:
            fail(f"cannot read {path}: {_first_line(result.stderr) or f'exit {result.rc}'}")
        return result.stdout

    # ------------------------------------------------------------ effective configuration

    @functools.cached_property
    def client_address(self) -> tuple[str, str]:
        """(our address as the host sees it, the host's own address): what -C asks about."""
        peers = getattr(self.host.backend, "peer_addresses", lambda: None)()
        return peers if peers else ("127.0.0.1", "127.0.0.1")

    def connection_spec(self, user: str) -> str:
        addr, laddr = self.client_address
        return f"user={user},host={addr},addr={addr},laddr={laddr},lport={self.entry.port or 22}"

    @property
    def main(self) -> str:
        """The sshd_config this host's sshd reads (the inventory's, or the one its `-f` start option names)."""
        return self.assessment.main or self.desired.sshd_config

    def _start_arguments(self) -> str:
        """-f and -o as sshd is started with them, so `sshd -T` shows what the running sshd uses."""
        from sshd_setup.core.startopts import running_options

        options = running_options(self.facts)
        words = ["-f", self.main] + [f"-o{key}={value}" for key, value in (options.options if options else ())]
        return "".join(" " + shlex.quote(word) for word in words)

    @functools.lru_cache(maxsize=64)  # noqa: B019  (one VerifyHost per host per session)
    def sshd_t(self, spec: str | None = None) -> EffectiveConfig:
        command = f"{SBIN_PATH} sshd -T" + self._start_arguments() + (f" -C {shlex.quote(spec)}" if spec else "")
        result = self.run(command)
        if result.rc != 0:
            fail(f"`sshd -T{' -C ' + spec if spec else ''}` failed (exit {result.rc}): {_first_line(result.stderr)}")
        return parse_sshd_t(result.stdout)
