# Copyright: sshd-setup developers; MIT License (see galaxy.yml)
"""sshd_setup.gateway.rollback: restore a backup over Ansible's connection (docs: modules/rollback.py)."""

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible_collections.sshd_setup.gateway.plugins.plugin_utils import pipeline

RUN_ARGS = ("to", "reload")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = False  # a restore has no dry-run: Ansible skips the task in check mode
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        missing = pipeline.missing_sshd_setup()
        if missing:
            return {**result, **missing}
        from sshd_setup.core.runs import is_run_id
        from sshd_setup.errors import InputError
        from sshd_setup.hostrestore import rollback_host

        args = dict(self._task.args)
        run_args = {name: args.pop(name) for name in RUN_ARGS if name in args}
        try:
            host = pipeline.HostRun(self, task_vars or {}, args)
            to = run_args.get("to")
            if to is not None and to != "latest" and (not isinstance(to, str) or not is_run_id(to)):
                raise InputError(f"host {host.name}: to", f"{to!r} is not a run id (e.g. 20261201T163235Z-3f9a1c)")
            options = host.options(reload=pipeline.boolean(run_args.get("reload", True), f"host {host.name}: reload"))
        except InputError as exc:
            return {**result, **pipeline.input_failure(exc)}
        outcome = rollback_host(host.entry, options, None if to in (None, "latest") else to)
        return {**result, **host.result(outcome)}
