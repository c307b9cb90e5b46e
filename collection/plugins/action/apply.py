# Copyright: sshd-setup developers; MIT License (see galaxy.yml)
"""sshd_setup.gateway.apply: sshd-setup's per-host pipeline over Ansible's connection (docs: modules/apply.py)."""

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible_collections.sshd_setup.gateway.plugins.plugin_utils import pipeline

RUN_ARGS = ("allow", "reload")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        missing = pipeline.missing_sshd_setup()
        if missing:
            return {**result, **missing}
        from sshd_setup.core.finding import parse_allow
        from sshd_setup.errors import InputError
        from sshd_setup.pipeline import run_host

        args = dict(self._task.args)
        run_args = {name: args.pop(name) for name in RUN_ARGS if name in args}
        try:
            host = pipeline.HostRun(self, task_vars or {}, args)
            allow = run_args.get("allow") or []
            options = host.options(
                dry_run=bool(self._task.check_mode),
                allow=parse_allow([allow] if isinstance(allow, str) else [str(code) for code in allow]),
                reload=pipeline.boolean(run_args.get("reload", True), f"host {host.name}: reload"),
            )
        except InputError as exc:
            return {**result, **pipeline.input_failure(exc)}
        outcome = run_host(host.entry, options)
        return {**result, **host.result(outcome, diff=bool(self._task.diff))}
