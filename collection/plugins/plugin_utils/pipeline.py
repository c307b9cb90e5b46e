# Copyright: sshd-setup developers; MIT License (see galaxy.yml)
"""Controller-side glue shared by the action plugins: Ansible's connection as sshd-setup's transport.

The per-host pipeline itself (facts, plan, findings, apply, lockout guard, rollback) is sshd-setup's
(sshd_setup/pipeline.py), imported from the controller's Python: nothing of it is copied here.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from ansible.errors import AnsibleConnectionFailure
from ansible.module_utils.common.text.converters import to_text
from ansible.utils.collection_loader import resource_from_fqcr

try:
    from sshd_setup.delegated import REMOTE_SHELL, Delegated, ScriptTransport, SshLogin, host_entry, merged_settings
    from sshd_setup.errors import InputError
    from sshd_setup.pipeline import RunOptions
    from sshd_setup.report import GOOD, Status
    from sshd_setup.transport import CommandResult, Unreachable
except ImportError as exc:  # reported per host by missing_sshd_setup()
    IMPORT_ERROR: ImportError | None = exc
else:
    IMPORT_ERROR = None

SETTINGS_VAR = "sshd_setup"
BREAK_GUARD_ENV = "SSHD_SETUP_TEST_BREAK_GUARD"
"""Test hook: set to 1 on the controller and every guard login fails until the host has been restored."""


def missing_sshd_setup():
    if IMPORT_ERROR is None:
        return None
    return {
        "failed": True,
        "msg": f"sshd-setup is not installed in the controller's Python ({IMPORT_ERROR}): pip install sshd-setup",
    }


def plain(value):
    """Ansible's (tagged, lazy) containers and strings as plain Python, for sshd-setup's checks."""
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value


class HostRun:
    """One host of one task: its entry (validated settings) and the transports over Ansible's connection."""

    def __init__(self, action, task_vars, overrides):
        self.action = action
        self.name = str(task_vars.get("inventory_hostname", "host"))
        self.connection_failure = None
        self.commands_ok = 0
        self.guard_broken = os.environ.get(BREAK_GUARD_ENV, "") == "1"
        self.guard_refused = False
        variable = plain(action._templar.template(task_vars.get(SETTINGS_VAR)))
        where = f"host {self.name}"
        settings = merged_settings(variable, plain(overrides), where)
        base_dir = Path(str(task_vars.get("inventory_dir") or task_vars.get("playbook_dir") or "."))
        self.kind = resource_from_fqcr(action._connection.transport)
        self.entry = host_entry(
            self.name,
            settings,
            where=f"{where}: {SETTINGS_VAR}",
            base_dir=base_dir,
            become=bool(action._connection.become),
            local=self.kind == "local",
        )
        self.login = self._guard_login()

    def _guard_login(self):
        """The lockout guard's NEW login, with the settings Ansible's connection plugin resolved for this host."""
        if self.kind == "local":
            return _LocalLogin()
        if self.kind != "ssh":
            raise InputError(
                f"host {self.name}: ansible_connection",
                f"the lockout guard needs a NEW login and knows how to open one for ssh and local, not {self.kind!r}",
            )
        connection = self.action._connection

        def option(name):
            try:
                return connection.get_option(name)
            except KeyError:
                return None

        if option("password"):
            raise InputError(
                f"host {self.name}: ansible_password",
                "the lockout guard logs in with keys only (BatchMode): use a key or ssh-agent",
            )
        args = []
        for name in ("ssh_args", "ssh_common_args", "ssh_extra_args"):
            args += shlex.split(to_text(option(name) or ""))
        port = option("port")
        return SshLogin(
            host=to_text(option("host") or self.action._play_context.remote_addr),
            port=int(port) if port else None,
            user=to_text(option("remote_user")) if option("remote_user") else None,
            key_file=to_text(option("private_key_file")) if option("private_key_file") else None,
            ssh_args=tuple(args),
            host_key_checking=bool(option("host_key_checking") if option("host_key_checking") is not None else True),
            timeout=float(option("timeout") or 10),
            executable=to_text(option("ssh_executable") or "ssh"),
        )

    def execute(self, script):
        """One script on the host through Ansible's connection: `sh -s` with become as the play says."""
        if self.guard_refused:  # the test hook breaks the guard's logins until the next script (the restore)
            self.guard_broken = False
        try:
            out = self.action._low_level_execute_command(
                REMOTE_SHELL, sudoable=True, in_data=script.encode("utf-8", "surrogateescape")
            )
        except AnsibleConnectionFailure as exc:
            self.connection_failure = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise Unreachable(f"ansible connection to {self.name}: {self.connection_failure}") from None
        self.commands_ok += 1
        return CommandResult(int(out.get("rc", 1)), to_text(out.get("stdout", "")), to_text(out.get("stderr", "")))

    def new_login(self):
        if self.guard_broken:
            self.guard_refused = True
            return _RefusedLogin()
        return self.login

    def options(self, **kwargs):
        transports = Delegated(ScriptTransport(self.execute), self.new_login)
        return RunOptions(transports=transports, **kwargs)

    def result(self, host_result, check_mode=False, diff=False):
        """The pipeline's HostResult in Ansible's terms."""
        status = host_result.status
        # the CLI's knob is --allow CODE; here it is the task's `allow` list
        reason = re.sub(
            r"allow with --allow (\S+) if intended", r"allow with `allow: [\1]` if intended", host_result.reason
        )
        out = {
            "changed": status in (Status.CHANGED, Status.WOULD_CHANGE),
            "failed": status not in GOOD,
            "msg": f"{status.value}: {reason}",
            "status": status.value,
            "reason": reason,
            "findings": [f.to_json() for f in host_result.findings],
            "files": [{"path": f.path, "reason": f.reason, "changed": f.changed} for f in host_result.files],
            "backup": host_result.backup,
            "users_created": list(host_result.users_created),
            "reloaded": host_result.reloaded,
            "round_trips": host_result.round_trips,
        }
        warnings = [
            f"{f.code}: {f.message}" + (f" ({f.path}:{f.line})" if f.path and f.line else "")
            for f in host_result.findings
            if f.severity.value == "warning"
        ]
        warnings += list(self.entry.desired.warnings)
        if warnings:
            out["warnings"] = warnings
        if diff:
            out["diff"] = [{"prepared": f.diff} for f in host_result.files if f.changed and f.diff]
        if status is Status.UNREACHABLE or (self.connection_failure and self.commands_ok == 0):
            out.update(unreachable=True, failed=False, status=Status.UNREACHABLE.value)  # Ansible counts it so
        return out


class _LocalLogin:
    """ansible_connection=local: this machine; a login is always there (as the CLI's local transport)."""

    round_trips = 0
    sshd_version = ""

    def probe(self):
        return True

    def close(self):
        return None


class _RefusedLogin:
    round_trips = 0
    sshd_version = ""

    def probe(self):
        raise Unreachable(f"new login refused by the test hook {BREAK_GUARD_ENV}=1")

    def close(self):
        return None


def input_failure(exc):
    return {"failed": True, "msg": str(exc), "input_error": True}


def boolean(value, where):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("yes", "true", "on", "1", "no", "false", "off", "0"):
        return value.lower() in ("yes", "true", "on", "1")
    raise InputError(where, f"must be true or false, got {value!r}")
