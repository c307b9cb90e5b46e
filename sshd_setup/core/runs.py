"""Runs and their backups (pure): the run id, what a host's backups say, which one a rollback restores,
and what uninstall makes of sshd_config.

Every invocation has ONE run id, made by the controller (UTC time + random suffix: sortable, never a
host's clock); each host names the backup it takes in that run after it. A backup is the complete state,
before that run, of every path sshd-setup manages or has managed on the host; its order on the host is a
counter (seq), so pruning and "latest" never depend on clocks. The first backup is the host before
sshd-setup ever touched it.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sshd_setup.core.config import parse

RUN_ID = re.compile(r"^\d{8}T\d{6}Z(-[0-9a-z]{1,16})?$")


def new_run_id(now: datetime | None = None) -> str:
    """'20261201T163235Z-3f9a1c': UTC time to the second, then 6 random hex digits."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(3)}"


def is_run_id(text: str) -> bool:
    return bool(RUN_ID.match(text))


@dataclass(frozen=True)
class BackupRun:
    """One complete backup on a host: the state before run `name`."""

    seq: int
    name: str
    kind: str
    """apply / rollback / uninstall: what the run did."""
    first: bool
    changed: tuple[str, ...]


@dataclass(frozen=True)
class BackupEntry:
    """One path in a backup's manifest: its content then (None: absent), or a directory's existence."""

    kind: str
    """existed / absent / dir / nodir"""
    path: str
    sha256: str = ""
    text: str | None = None


@dataclass
class HostBackups:
    runs: list[BackupRun] = field(default_factory=list)
    """In run order (oldest first)."""
    sent: str = ""
    """The backup whose manifest and files came with the facts ('' when none was asked or found)."""
    entries: list[BackupEntry] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [run.name for run in self.runs]

    def latest_change(self) -> BackupRun | None:
        """What a plain rollback restores: the state before the latest run that was not itself a rollback."""
        changes = [run for run in self.runs if run.kind != "rollback"]
        return changes[-1] if changes else None

    def first(self) -> BackupRun | None:
        return next((run for run in self.runs if run.first), None)

    def files(self) -> dict[str, str | None]:
        """The sent backup's files: path -> text (None: absent)."""
        return {e.path: e.text for e in self.entries if e.kind in ("existed", "absent")}


def _body(text: str) -> list[str]:
    """sshd_config's lines outside our managed blocks, the last one ending in a newline (as apply writes)."""
    from sshd_setup.core.blocks import strip_managed_blocks

    config = parse(text, "sshd_config")
    blocks = strip_managed_blocks(config)
    if blocks.problem:
        raise ValueError(blocks.problem)
    body = list(blocks.body)
    if body and not body[-1].endswith("\n"):
        body[-1] += config.newline
    return body


def without_blocks(current: str) -> str:
    """sshd_config minus our managed blocks (no first backup to say what it was). ValueError: damaged."""
    return "".join(_body(current))


def uninstalled_main(current: str, original: str | None) -> str | None:
    """sshd_config without our managed blocks: the original bytes when nothing else changed since (even a
    missing final newline comes back), else the current file minus our blocks. None: remove the file (it
    did not exist before and holds nothing but what we wrote). ValueError: damaged markers."""
    body = _body(current)
    if original is None:
        rest = [line for line in body if line.strip() and not line.lstrip().startswith("#")]
        vendor = [line for line in rest if line.split()[:1] == ["Include"] and "/usr/etc/ssh/sshd_config" in line]
        return None if rest == vendor else "".join(body)
    if _body(original) == body:
        return original
    return "".join(body)
