"""The pure parts of runs and backups: run ids, which backup a rollback restores, what uninstall makes of
sshd_config, and parsing what the facts script says about backups."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from sshd_setup.core.plan import render_main
from sshd_setup.core.runs import BackupRun, HostBackups, is_run_id, new_run_id, uninstalled_main, without_blocks
from sshd_setup.gather import parse_backups
from sshd_setup.remote.protocol import ApplyOutcome
from sshd_setup.templating import environment
from tests.helpers import desired_from


def test_run_ids_sort_by_controller_time_and_differ_within_a_second() -> None:
    early = new_run_id(datetime(2026, 12, 1, 9, 59, 59, tzinfo=UTC))
    late = new_run_id(datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC))
    assert early.startswith("20261201T095959Z-") and early < late
    assert len({new_run_id() for _ in range(50)}) == 50
    assert is_run_id(early) and is_run_id("20261124T000000Z")
    for bad in ("", "latest", "20261201T100000Z-x;rm", "../20261201T100000Z", "20261201T100000Z-A B"):
        assert not is_run_id(bad), bad


def test_a_plain_rollback_targets_the_latest_change_never_a_rollback() -> None:
    runs = [
        BackupRun(1, "r1", "apply", True, ()),
        BackupRun(2, "r2", "apply", False, ()),
        BackupRun(3, "r3", "rollback", False, ()),
        BackupRun(4, "r4", "rollback", False, ()),
    ]
    backups = HostBackups(runs=runs)
    assert backups.latest_change() == runs[1]  # rolling back twice restores r2 twice: no toggle
    assert backups.first() == runs[0]
    assert HostBackups().latest_change() is None


@pytest.mark.parametrize(
    "original",
    [
        "Port 22\nPasswordAuthentication no\n",
        "Port 22\r\nUsePAM yes\r\n",
        "Port 22\nno final newline",
        "",
    ],
)
def test_uninstall_gives_back_the_original_bytes(original: str) -> None:
    desired = desired_from({"principals": [{"user": "johndoe", "principal": "jdoe"}]})
    installed, _, _ = render_main(environment(), desired, original)
    assert installed is not None and installed != original
    assert uninstalled_main(installed, original) == original


def test_uninstall_keeps_edits_made_since_and_drops_a_file_we_created() -> None:
    desired = desired_from({"principals": [{"user": "johndoe", "principal": "jdoe"}]})
    installed, _, _ = render_main(environment(), desired, "Port 22\n")
    assert installed is not None
    edited = installed.replace("Port 22\n", "Port 22\nPasswordAuthentication no\n")
    assert uninstalled_main(edited, "Port 22\n") == "Port 22\nPasswordAuthentication no\n"
    created, _, _ = render_main(environment(), desired, None, include_vendor=True)
    assert created is not None and uninstalled_main(created, None) is None
    assert without_blocks(edited) == "Port 22\nPasswordAuthentication no\n"  # no first backup to compare
    with pytest.raises(ValueError):
        uninstalled_main("# BEGIN sshd-setup managed block: gateway CA\nPort 22\n", "Port 22\n")


def test_parse_backups_reads_runs_in_order_and_the_sent_backup() -> None:
    text = base64.b64encode(b"Port 22\n").decode()
    output = "\n".join(
        [
            "@@BEGIN 1",
            "@@RUN 2 20261201T100001Z-bbbbbb apply 0 /etc/ssh/ca.pub",
            "@@RUN 1 20261201T100002Z-aaaaaa apply 1 /etc/ssh/sshd_config /etc/ssh/ca.pub",
            "@@BACKUPS 20261201T100001Z-bbbbbb 20261201T100002Z-aaaaaa",
            "@@BKNAME 20261201T100002Z-aaaaaa",
            "@@BKM absent - /etc/ssh/ca.pub",
            "@@BKM nodir - /etc/ssh/principals",
            "@@BKM existed 0123abcd /etc/ssh/sshd_config",
            "@@BKFILE /etc/ssh/sshd_config",
            text,
            "@@EOF",
            "@@END",
        ]
    )
    backups = parse_backups(output)
    assert backups.names == ["20261201T100002Z-aaaaaa", "20261201T100001Z-bbbbbb"]  # by the host's counter
    assert backups.runs[0].first and backups.runs[0].changed == ("/etc/ssh/sshd_config", "/etc/ssh/ca.pub")
    assert backups.sent == "20261201T100002Z-aaaaaa"
    assert backups.files() == {"/etc/ssh/ca.pub": None, "/etc/ssh/sshd_config": "Port 22\n"}
    assert [e.kind for e in backups.entries] == ["absent", "nodir", "existed"]


def _records(*lines: str, output: str = "") -> ApplyOutcome:
    from sshd_setup.remote.protocol import parse_apply_output

    block = ["@@OUTPUT", base64.b64encode(output.encode()).decode(), "@@EOF"] if output else []
    return parse_apply_output("\n".join([*lines, *block, "@@END"]) + "\n")


def test_a_held_lock_or_a_changed_file_blocks_the_host_with_the_reason() -> None:
    from sshd_setup.pipeline import lock_refused, note_lock
    from sshd_setup.report import HostResult, Status

    result = HostResult("web1", Status.FAILED, "")
    held = _records("@@FAIL lock", output="held by run 20261201T100000Z-aaaaaa 77 2026-12-01T10:00:00Z")
    assert lock_refused(result, held) and result.status is Status.BLOCKED
    assert result.reason == (
        "host is locked, nothing written: held by run 20261201T100000Z-aaaaaa 77 2026-12-01T10:00:00Z"
    )
    cas = _records("@@LOCK held", "@@FAIL cas", output="changed since facts were read: /etc/ssh/ca.pub")
    assert lock_refused(result, cas) and "changed since facts were read: /etc/ssh/ca.pub" in result.reason
    assert not lock_refused(HostResult("web1", Status.FAILED, ""), _records("@@FAIL validate", output="bad"))
    note_lock(result, _records("@@LOCK took-over 20261201T090000Z-dead00 12 2026-12-01T09:00:00Z", "@@CLEANED /x"))
    assert result.details == [
        "took over the lock left by run 20261201T090000Z-dead00, whose process on the host is gone",
        "removed leftovers of a cut run: /x",
    ]


def test_a_restore_that_differs_is_never_reported_restored() -> None:
    from sshd_setup.pipeline import _report_failure, restore_problem
    from sshd_setup.report import HostResult, Status
    from sshd_setup.transport import CommandResult

    found = _records("@@FAIL inactive", "@@RESTORE-INCOMPLETE /etc/ssh/ca.pub", "@@ROLLEDBACK ok", output="down")
    assert restore_problem(found) == "restore incomplete: /etc/ssh/ca.pub"
    result = HostResult("web1", Status.FAILED, "", backup="20261201T100000Z-aaaaaa")
    _report_failure(result, found, CommandResult(4, "", ""))
    assert result.status is Status.FAILED and "restore incomplete: /etc/ssh/ca.pub" in result.reason
    assert "restored" not in result.reason
    assert restore_problem(_records("@@RESTORED 20261201T100000Z-aaaaaa")) == ""
