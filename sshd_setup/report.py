"""Per-host results, --json, and the exit code (from ONE place: exit_code())."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sshd_setup import exitcodes
from sshd_setup.core.finding import Finding
from sshd_setup.core.runs import BackupRun


class Status(StrEnum):
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    WOULD_CHANGE = "would-change"
    CHECKED = "checked"
    BLOCKED = "blocked"
    FAILED = "failed"
    ROLLED_BACK = "failed-rolled-back"
    UNREACHABLE = "unreachable"
    NOT_STARTED = "not-started"
    """Never worked on: stopped by Ctrl-C, --max-fail, or an unconfirmed apply."""


GOOD = frozenset({Status.CHANGED, Status.UNCHANGED, Status.WOULD_CHANGE, Status.CHECKED})


@dataclass
class FileReport:
    path: str
    reason: str
    changed: bool
    diff: str = ""


@dataclass
class HostResult:
    host: str
    status: Status
    reason: str
    findings: list[Finding] = field(default_factory=list)
    files: list[FileReport] = field(default_factory=list)
    backup: str | None = None
    users_created: list[str] = field(default_factory=list)
    """Users created (apply) or that would be (dry-run)."""
    reloaded: bool = False
    round_trips: int = 0
    connections: int = 0
    seconds: float = 0.0
    details: list[str] = field(default_factory=list)
    runs: list[BackupRun] = field(default_factory=list)
    """`rollback --list`: the backups on this host, in run order."""

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "status": self.status.value,
            "reason": self.reason,
            "findings": [f.to_json() for f in self.findings],
            "files": [vars(f) for f in self.files],
            "backup": self.backup,
            "users_created": self.users_created,
            "reloaded": self.reloaded,
            "round_trips": self.round_trips,
            "connections": self.connections,
            "seconds": round(self.seconds, 3),
            "details": self.details,
            **({"runs": [vars(run) for run in self.runs]} if self.runs else {}),
        }


def exit_code(results: list[HostResult], interrupted: bool = False) -> int:
    """0: every host converged (or would); 1: any host blocked, failed, unreachable or not started; 130: Ctrl-C."""
    return exitcodes.exit_code(all_good=all(r.status in GOOD for r in results), interrupted=interrupted)


def to_json(
    results: list[HostResult],
    mode: str,
    *,
    elapsed: float | None = None,
    interrupted: bool = False,
    run_id: str = "",
) -> dict[str, Any]:
    data: dict[str, Any] = {"schema": 1, "mode": mode}
    if run_id:
        data["run_id"] = run_id
    data["exit_code"] = exit_code(results, interrupted)
    if elapsed is not None:
        data["elapsed_seconds"] = round(elapsed, 3)
    data["interrupted"] = interrupted
    data["summary"] = {status.value: sum(1 for r in results if r.status is status) for status in Status}
    data["hosts"] = [r.to_json() for r in results]
    return data
