# Copyright: sshd-setup developers; MIT License (see galaxy.yml)
"""sshd_setup.gateway.verify: sshd-setup's testinfra suite for this host (docs: modules/verify.py)."""

from __future__ import annotations

import json
import subprocess
import sys

from ansible.plugins.action import ActionBase
from ansible_collections.sshd_setup.gateway.plugins.plugin_utils import pipeline


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True  # read-only
    _supports_async = False
    _VALID_ARGS = frozenset(("allow", "inventory", "timeout"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        missing = pipeline.missing_sshd_setup()
        if missing:
            return {**result, **missing}
        task_vars = task_vars or {}
        host = str(task_vars.get("inventory_hostname"))
        inventory = self._task.args.get("inventory") or task_vars.get("inventory_file")
        if not inventory:
            return {**result, "failed": True, "msg": f"host {host}: no inventory file: pass inventory=PATH"}
        allow = self._task.args.get("allow") or []
        argv = [sys.executable, "-m", "sshd_setup", "verify", "-i", str(inventory), "--limit", host, "--json"]
        for code in [allow] if isinstance(allow, str) else allow:
            argv += ["--allow", str(code)]
        try:
            proc = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                timeout=float(self._task.args.get("timeout", 300)),
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return {**result, "failed": True, "msg": f"sshd-setup verify: {exc}"}
        try:
            report = json.loads(proc.stdout)
        except ValueError:
            lines = [line for line in proc.stderr.splitlines() if line.strip()]
            return {**result, "failed": True, "rc": proc.returncode, "msg": lines[-1] if lines else "no output"}
        mine = next((h for h in report.get("hosts", []) if h.get("host") == host), None)
        if mine is None:
            problems = "; ".join(report.get("problems", [])) or "no result for this host"
            return {**result, "failed": True, "msg": f"sshd-setup verify: {problems}"}
        return {
            **result,
            "changed": False,
            "failed": mine["status"] != "passed",
            "msg": f"{mine['status']}: {mine['reason']}",
            "status": mine["status"],
            "reason": mine["reason"],
            "checks": mine["checks"],
        }
