"""One result model (sshd_setup.report.HostOutcome) for every command: the --json of apply and verify stays
byte for byte what it was before the two models became one (tests/fixtures/results/*.json were written by
the code before that change), and the summary, grouping and exit code read both alike (issue 21 item 6)."""

from __future__ import annotations

import json
from pathlib import Path

from sshd_setup.core.finding import Finding, Severity
from sshd_setup.core.runs import BackupRun
from sshd_setup.grouping import View, plain, summary_lines
from sshd_setup.report import (
    CheckResult,
    FileReport,
    HostOutcome,
    HostResult,
    HostVerification,
    Status,
    exit_code,
    to_json,
    verify_json,
)

PINNED = Path(__file__).parent / "fixtures" / "results"
BACKUP = "20261201T100000Z-abcdef"
MAIN = "/etc/ssh/sshd_config"


def apply_results() -> list[HostResult]:
    changed = HostResult(
        "web1",
        Status.CHANGED,
        "changed 2 file(s); new login verified",
        seconds=1.23456,
        findings=[Finding("PORT-NOT-22", Severity.WARNING, "sshd listens on 2222", "open 2222", MAIN, 3)],
        files=[
            FileReport("/etc/ssh/ca.pub", "create: trust CA SHA256:x", True, "+key\n"),
            FileReport(MAIN, "unchanged", False),
        ],
        backup=BACKUP,
        users_created=["vmuser"],
        reloaded=True,
        round_trips=3,
        connections=2,
    )
    run = BackupRun(1, BACKUP, "apply", True, ("/etc/ssh/ca.pub",))
    rolled = HostResult("web2", Status.ROLLED_BACK, "lockout guard failed", runs=[run])
    return [changed, rolled, HostResult("web3", Status.UNREACHABLE, "ssh to 10.0.0.3:22: refused")]


def verifications() -> list[HostVerification]:
    return [
        HostVerification.of_checks(
            "db1",
            [
                CheckResult("ca_file", "passed", description="CA file", detail="2 keys", seconds=0.1234),
                CheckResult("socket", "skipped", "not socket-activated", seconds=0.01),
            ],
        ),
        HostVerification.of_checks(
            "db2",
            [
                CheckResult("ca_file", "passed", seconds=0.2),
                CheckResult("principals[vm]", "failed", "mode 0600, expected 0644", seconds=0.3),
                CheckResult("login", "error", "boom", seconds=0.4),
            ],
        ),
        HostVerification.of_checks("db3", [CheckResult("ca_file", "error", "unreachable: refused")], "refused"),
        HostVerification.of_checks("db4", [], not_started=True),
        HostVerification.of_checks("db5", []),
    ]


def test_apply_json_is_byte_identical() -> None:
    data = to_json(apply_results(), "apply", elapsed=2.5, run_id=BACKUP)
    assert json.dumps(data, indent=2) + "\n" == (PINNED / "apply.json").read_text()


def test_verify_json_is_byte_identical() -> None:
    data = verify_json(verifications(), ["collection: boom"], 3.14159)
    assert json.dumps(data, indent=2) + "\n" == (PINNED / "verify.json").read_text()


def test_a_verification_decides_its_status_and_reason_from_its_checks() -> None:
    passed, failed, unreachable, not_started, empty = verifications()
    assert (passed.status, passed.reason, passed.seconds) == (Status.PASSED, "all 2 checks passed", 0.1334)
    assert failed.status is Status.FAILED and [c.check for c in failed.failing] == ["principals[vm]", "login"]
    assert failed.reason == "principals[vm]: mode 0600, expected 0644 (+1 more failing check(s))"
    assert (unreachable.status, unreachable.reason) == (Status.UNREACHABLE, "refused")
    assert not_started.status is Status.NOT_STARTED
    assert (empty.status, empty.reason) == (Status.FAILED, "no check ran for this host")  # never a silent pass


def test_one_exit_code_and_one_summary_for_both_kinds_of_result() -> None:
    passed, failed, *_ = verifications()
    mixed: list[HostOutcome] = [passed, HostResult("web1", Status.UNCHANGED, "nothing to do")]
    assert exit_code(mixed) == 0
    assert exit_code([*mixed, failed]) == 1
    assert exit_code(mixed, problems=True) == 1  # a run-wide problem (verify's collection error) fails the run
    assert exit_code(mixed, interrupted=True) == 130
    summary = plain(summary_lines(verifications(), View("verify", "sshd-setup verify", 3.14159)))
    assert summary.splitlines() == [
        "sshd-setup verify: 5 hosts in 3.1 s",
        "  passed          1  db1: all 2 checks passed",
        "  failed          1  db2: principals[vm]: mode 0600, expected 0644 (+1 more failing check(s))",
        "  failed          1  db5: no check ran for this host",
        "  unreachable     1  db3: refused",
        "  not-started     1  db4: not started: interrupted (Ctrl-C)",
        "1 passed, 2 failed, 1 unreachable, 1 not-started",
    ]
