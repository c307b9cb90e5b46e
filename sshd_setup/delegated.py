"""Running the per-host pipeline over a connection someone else owns (Ansible's, in the collection).

- `ScriptTransport`: our scripts through the owner's "run this command with this stdin" (become is theirs);
- `SshLogin`: the lockout guard's NEW login, an `ssh` process that can never reuse a multiplexed master;
- `host_entry()`: the `sshd_setup` settings of one host, overridden per key, validated as the CLI does.

No Ansible import here: the collection adapts Ansible's objects to these.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sshd_setup.core.desired import build_desired, check_settings_fragment
from sshd_setup.errors import InputError
from sshd_setup.inventory import SETTINGS_VAR, HostEntry
from sshd_setup.transport import CommandResult, ConnectOptions, SeparateScripts, Unreachable

REMOTE_SHELL = "sh -s"
"""What runs each script: a POSIX sh reading it from standard input (the owner adds sudo for become)."""

Execute = Callable[[str], CommandResult]
"""Run REMOTE_SHELL on the host with this script as its standard input; its exit status and output."""


class ScriptTransport:
    """A Transport whose every script is one command of the owner's connection (one round trip each)."""

    def __init__(self, execute: Execute) -> None:
        self._execute = execute
        self.round_trips = 0

    @property
    def sshd_version(self) -> str:
        return ""  # no banner at hand: the facts script asks sshd -V

    def run_script(self, script: str, timeout: float | None = None) -> CommandResult:
        self.round_trips += 1
        return self._execute(script)

    def probe(self) -> bool:
        return self.run_script("exit 0").ok

    def shell(self) -> SeparateScripts:
        return SeparateScripts(self)

    def close(self) -> None:
        return None


# Options ssh takes first-come: these come before everything else, so no ssh_args or ssh_config can
# turn them back into a channel of a ControlPersist master.
NEW_LOGIN_OPTIONS = ("-o", "ControlMaster=no", "-o", "ControlPath=none", "-o", "ControlPersist=no")


@dataclass(frozen=True)
class SshLogin:
    """A NEW `ssh` login with the connection's settings; probe() runs `exit 0` as the login user."""

    host: str
    port: int | None = None
    user: str | None = None
    key_file: str | None = None
    ssh_args: Sequence[str] = ()
    host_key_checking: bool = True
    timeout: float = 10.0
    executable: str = "ssh"
    round_trips: int = field(default=0, compare=False)

    def argv(self, command: str) -> list[str]:
        args = [self.executable, *NEW_LOGIN_OPTIONS, "-o", "BatchMode=yes", "-o", f"ConnectTimeout={int(self.timeout)}"]
        args += self.ssh_args
        if not self.host_key_checking:
            args += ["-o", "StrictHostKeyChecking=no"]
        if self.port:
            args += ["-o", f"Port={self.port}"]
        if self.user:
            args += ["-o", f"User={self.user}"]
        if self.key_file:
            args += ["-o", f"IdentityFile={os.path.expanduser(self.key_file)}", "-o", "IdentitiesOnly=yes"]
        return [*args, "--", self.host, command]

    @property
    def sshd_version(self) -> str:
        return ""

    def probe(self) -> bool:
        try:
            proc = subprocess.run(
                self.argv("exit 0"), capture_output=True, text=True, timeout=self.timeout + 5, stdin=subprocess.DEVNULL
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise Unreachable(f"new ssh login to {self.host}: {exc}") from None
        if proc.returncode == 255:
            lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
            raise Unreachable(f"new ssh login to {self.host}: {lines[-1] if lines else 'ssh exited 255'}")
        return proc.returncode == 0

    def run_script(self, script: str, timeout: float | None = None) -> CommandResult:
        raise NotImplementedError("the lockout guard's login only runs probe()")

    def shell(self) -> Any:
        raise NotImplementedError("the lockout guard's login only runs probe()")

    def close(self) -> None:
        return None


@dataclass
class Delegated:
    """Transports for one host: `session` is the owner's connection, each guard login a new SshLogin."""

    session_transport: ScriptTransport
    login: Callable[[], Any]

    def session(self, entry: HostEntry, options: ConnectOptions) -> ScriptTransport:
        return self.session_transport

    def new_login(self, entry: HostEntry, options: ConnectOptions) -> Any:
        return self.login()


def merged_settings(variable: Any, overrides: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The host's `sshd_setup` variable with each given key replaced, both checked as the CLI checks them."""
    check_settings_fragment(variable, f"{where}: {SETTINGS_VAR}")
    check_settings_fragment(dict(overrides), f"{where}: arguments")
    return {**(variable or {}), **overrides}


def host_entry(
    name: str,
    settings: Mapping[str, Any],
    *,
    where: str,
    base_dir: Path,
    become: bool = False,
    local: bool = False,
) -> HostEntry:
    """A HostEntry for the pipeline: the Desired state from checked settings; the connection is the owner's."""

    def read_keys_file(file_name: str) -> tuple[str, str]:
        file = Path(file_name) if os.path.isabs(file_name) else base_dir / file_name
        try:
            return file.read_text(encoding="utf-8"), f"{where}.ca_keys_file ({file})"
        except FileNotFoundError:
            raise InputError(f"{where}.ca_keys_file", f"{file} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{where}.ca_keys_file", f"cannot read {file}: {exc}") from None

    desired = build_desired(settings, f"{where}: {SETTINGS_VAR}", read_keys_file)
    return HostEntry(
        name=name,
        groups=(),
        address=name,
        port=None,
        user=None,
        key_file=None,
        become=become,
        connection="local" if local else "ssh",
        ssh_args=(),
        desired=desired,
    )
