"""Run the real `sshd-setup` CLI against booted test hosts, with an inventory made for the test."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.testhosts import Fleet, Host


@dataclass
class CliRun:
    returncode: int
    stdout: str
    stderr: str

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.stdout)  # type: ignore[no-any-return]

    def host(self, name: str) -> dict[str, Any]:
        return next(h for h in self.json["hosts"] if h["host"] == name)


def write_inventory(
    fleet: Fleet,
    path: Path,
    settings: dict[str, Any],
    host_settings: dict[str, dict[str, Any]] | None = None,
    extra_hosts: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """The fleet's own inventory plus our `sshd_setup` settings (all.vars) and per-host overrides."""
    inventory = yaml.safe_load(fleet.inventory_path.read_text())
    inventory["all"]["vars"]["sshd_setup"] = settings
    for name, override in (host_settings or {}).items():
        inventory["all"]["hosts"][name] = {**(inventory["all"]["hosts"][name] or {}), "sshd_setup": override}
    for name, host_vars in (extra_hosts or {}).items():
        inventory["all"]["hosts"][name] = host_vars
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    return path


def sshd_setup(*args: str | Path, timeout: float = 300, env: dict[str, str] | None = None) -> CliRun:
    """env: variables added to this process's environment (e.g. the apply script's test hook)."""
    proc = subprocess.run(
        [sys.executable, "-m", "sshd_setup", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **env} if env else None,
    )
    return CliRun(proc.returncode, proc.stdout, proc.stderr)


def etc_ssh_state(host: Host) -> dict[str, str]:
    """sha256 and mtime of every file under /etc/ssh (what a change would touch)."""
    out = host.run(
        "find /etc/ssh -type f -printf '%p %T@ ' -exec sha256sum {} \\; | awk '{print $1, $2, $3}' | sort"
    ).stdout
    return {line.split()[0]: " ".join(line.split()[1:]) for line in out.splitlines() if line.strip()}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
