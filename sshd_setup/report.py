"""A host's outcome in every command: one model (HostOutcome) that the --json, the grouped human output
and the exit code read; apply/check/rollback/uninstall (HostResult) and verify (HostVerification) add their
payload to it. The exit code comes from ONE place: exit_code()."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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
    PASSED = "passed"
    """verify: every check passed."""
    BLOCKED = "blocked"
    FAILED = "failed"
    ROLLED_BACK = "failed-rolled-back"
    UNREACHABLE = "unreachable"
    NOT_STARTED = "not-started"
    """Never worked on: stopped by Ctrl-C, --max-fail, or an unconfirmed apply."""


GOOD = frozenset({Status.CHANGED, Status.UNCHANGED, Status.WOULD_CHANGE, Status.CHECKED, Status.PASSED})
FLEET_STATUSES = tuple(s for s in Status if s is not Status.PASSED)
"""What apply, check, rollback and uninstall report (their --json summary counts each)."""
VERIFY_STATUSES = (Status.PASSED, Status.FAILED, Status.UNREACHABLE, Status.NOT_STARTED)


@dataclass
class HostOutcome:
    """One host's outcome: its status, the reason in a line, the seconds it took; payload() adds the rest."""

    host: str
    status: Status
    reason: str = ""
    seconds: float = field(default=0.0, kw_only=True)
    """Keyword-only: a command's own fields follow the reason (HostResult(host, status, reason, findings))."""

    @property
    def good(self) -> bool:
        return self.status in GOOD

    def payload(self) -> dict[str, Any]:
        """The command's own keys of this host's --json, between the reason and the seconds."""
        return {}

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "status": self.status.value,
            "reason": self.reason,
            **self.payload(),
            "seconds": round(self.seconds, 3),
        }


@dataclass
class FileReport:
    path: str
    reason: str
    changed: bool
    diff: str = ""


@dataclass
class HostResult(HostOutcome):
    """apply / check / rollback / uninstall."""

    findings: list[Finding] = field(default_factory=list)
    files: list[FileReport] = field(default_factory=list)
    backup: str | None = None
    users_created: list[str] = field(default_factory=list)
    """Users created (apply) or that would be (dry-run)."""
    reloaded: bool = False
    round_trips: int = 0
    connections: int = 0
    details: list[str] = field(default_factory=list)
    runs: list[BackupRun] = field(default_factory=list)
    """`rollback --list`: the backups on this host, in run order."""

    def payload(self) -> dict[str, Any]:
        return {
            "findings": [f.to_json() for f in self.findings],
            "files": [vars(f) for f in self.files],
            "backup": self.backup,
            "users_created": self.users_created,
            "reloaded": self.reloaded,
            "round_trips": self.round_trips,
            "connections": self.connections,
        }

    def to_json(self) -> dict[str, Any]:
        runs = {"runs": [vars(run) for run in self.runs]} if self.runs else {}
        return {**super().to_json(), "details": self.details, **runs}


@dataclass
class CheckResult:
    """One check of the verification suite on one host."""

    check: str
    status: str
    """passed / failed / error / skipped"""
    reason: str = ""
    description: str = ""
    detail: str = ""
    """What a passing check saw, when it says (e.g. 'ssh.socket is active')."""
    seconds: float = 0.0

    @property
    def failing(self) -> bool:
        return self.status in ("failed", "error")

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "status": self.status,
            "reason": self.reason,
            "description": self.description,
            "detail": self.detail,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class HostVerification(HostOutcome):
    """verify: the checks that ran on the host (of_checks() decides status, reason and seconds from them)."""

    checks: list[CheckResult] = field(default_factory=list)

    @classmethod
    def of_checks(
        cls, host: str, checks: Sequence[CheckResult], unreachable: str | None = None, not_started: bool = False
    ) -> HostVerification:
        failing = [c for c in checks if c.failing]
        if not_started:
            status, reason = Status.NOT_STARTED, "not started: interrupted (Ctrl-C)"
        elif unreachable is not None:
            status, reason = Status.UNREACHABLE, unreachable
        elif not checks:  # nothing ran: never report an unverified host as passing
            status, reason = Status.FAILED, "no check ran for this host"
        elif failing:
            more = f" (+{len(failing) - 1} more failing check(s))" if len(failing) > 1 else ""
            status, reason = Status.FAILED, f"{failing[0].check}: {failing[0].reason}{more}"
        else:
            status, reason = Status.PASSED, f"all {len(checks)} checks passed"
        return cls(host, status, reason, list(checks), seconds=sum(c.seconds for c in checks))

    @property
    def failing(self) -> list[CheckResult]:
        return [c for c in self.checks if c.failing]

    def payload(self) -> dict[str, Any]:
        return {"checks": [c.to_json() for c in self.checks], "failed": [c.check for c in self.failing]}


def exit_code(results: Iterable[HostOutcome], interrupted: bool = False, *, problems: bool = False) -> int:
    """0: every host converged, would, or passed; 1: any host did not (or a run-wide problem); 130: Ctrl-C."""
    all_good = all(r.good for r in results) and not problems
    return exitcodes.exit_code(all_good=all_good, interrupted=interrupted)


def status_counts(results: Iterable[HostOutcome], statuses: Iterable[Status]) -> dict[str, int]:
    listed = list(results)
    return {status.value: sum(1 for r in listed if r.status is status) for status in statuses}


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
    data["summary"] = status_counts(results, FLEET_STATUSES)
    data["hosts"] = [r.to_json() for r in results]
    return data


def verify_json(
    results: list[HostVerification], problems: list[str], seconds: float, *, interrupted: bool = False
) -> dict[str, Any]:
    counts = status_counts(results, VERIFY_STATUSES)
    return {
        "schema": 1,
        "mode": "verify",
        "exit_code": exit_code(results, interrupted, problems=bool(problems)),
        "summary": {**counts, "hosts": len(results), "seconds": round(seconds, 3)},
        "problems": problems,
        "hosts": [r.to_json() for r in results],
    }
