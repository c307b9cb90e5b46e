"""Per-host results, the summary table, --json, and the exit code (from ONE place: exit_code())."""

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


GOOD = frozenset({Status.CHANGED, Status.UNCHANGED, Status.WOULD_CHANGE, Status.CHECKED})
_STYLE = {
    Status.CHANGED: "green",
    Status.UNCHANGED: "dim",
    Status.WOULD_CHANGE: "cyan",
    Status.CHECKED: "green",
    Status.BLOCKED: "yellow",
    Status.FAILED: "bold red",
    Status.ROLLED_BACK: "red",
    Status.UNREACHABLE: "magenta",
}


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

    def detail_lines(self) -> list[str]:
        lines = [f"{file.path}: {file.reason}" for file in self.files if file.changed]
        lines += [f"user {user}: created (mapped; create_users is on)" for user in self.users_created]
        return lines

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


def exit_code(results: list[HostResult]) -> int:
    """0: every host converged (or would); 1: any host blocked, failed or unreachable."""
    return exitcodes.OK if all(r.status in GOOD for r in results) else exitcodes.HOST_FAILURES


def print_summary(results: list[HostResult], title: str, run_id: str = "") -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("host")
    table.add_column("status")
    table.add_column("reason", overflow="fold")
    for result in results:
        style = _STYLE[result.status]
        first_line = result.reason.splitlines()[0] if result.reason else ""
        table.add_row(escape(result.host), f"[{style}]{result.status.value}[/{style}]", escape(first_line))
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status.value] = counts.get(result.status.value, 0) + 1
    console = Console(highlight=False)
    console.print(table)
    console.print(", ".join(f"{n} {status}" for status, n in counts.items()))
    if run_id:
        console.print(f"run {run_id}")


def to_json(results: list[HostResult], mode: str, run_id: str = "") -> dict[str, Any]:
    head: dict[str, Any] = {"schema": 1, "mode": mode}
    if run_id:
        head["run_id"] = run_id
    return {**head, "exit_code": exit_code(results), "hosts": [r.to_json() for r in results]}
