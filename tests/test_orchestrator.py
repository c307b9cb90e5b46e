"""The per-host pipeline (pipeline.py) and restores (hostrestore.py) through every exit, on a fake host.

The fake host (tests/fakehost) answers each script with what a real bookworm host printed for it; a few
answers are a recorded one with one record changed (named `*_edited` here), for failures a healthy host
cannot be made to show. A virtual clock runs the lockout guard's 5 s of retries in no time.
"""

from __future__ import annotations

import base64

import pytest

from sshd_setup import exitcodes, pipeline, report
from sshd_setup.errors import InputError
from sshd_setup.gather import parse_facts
from sshd_setup.hostrestore import list_host, rollback_host, uninstall_host
from sshd_setup.pipeline import INTERRUPTED_BEFORE_CHANGE, RunOptions, hold_host, run_host
from sshd_setup.report import Status
from sshd_setup.transport import CommandResult, Unreachable
from tests.fakehost import (
    SETTINGS,
    SETTINGS_MORE,
    FakeHost,
    VirtualClock,
    cut,
    entry,
    guard_restored,
    record,
    with_file,
)

FIRST_RUN = "20261201T174939Z-423ded"  # the backup the recorded first apply took (records/apply-changed)
RELOAD_FAILED_RUN = "20261201T174941Z-265b07"  # records/apply-reload-failed
NO_SHELL = "a new login could not run a shell command"


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> VirtualClock:
    virtual = VirtualClock()
    monkeypatch.setattr(pipeline, "time", virtual)
    return virtual


def options(host: FakeHost, **overrides: object) -> RunOptions:
    return RunOptions(transports=host, **overrides)  # type: ignore[arg-type]


def edited(name: str, old: str, new: str) -> str:
    text = record(name)
    assert old in text, (name, old)
    return text.replace(old, new)


def with_output(name: str, text: str) -> str:
    """A recorded output whose OUTPUT block (base64, as apply.sh's fail() writes it) says `text` instead."""
    head, rest = record(name).split("@@OUTPUT\n", 1)
    tail = rest.split("@@EOF\n", 1)[1]
    return f"{head}@@OUTPUT\n{base64.encodebytes(text.encode()).decode()}@@EOF\n{tail}"


def guard_attempts(step: float = 0.1) -> int:
    """New logins one failing guard tries: one per `step` of its GUARD_SECONDS (the clock's own sums)."""
    clock, deadline, attempts = VirtualClock(), VirtualClock().now + pipeline.GUARD_SECONDS, 0
    while clock.monotonic() < deadline:
        attempts += 1
        clock.sleep(step)
    return attempts


# --- before any change -----------------------------------------------------------------------------------


def test_sudo_asking_for_a_password_fails_the_facts_and_sends_nothing_else() -> None:
    host = FakeHost(facts=[CommandResult(1, "", "sudo: a password is required\n")])

    result = run_host(entry(), options(host))

    assert result.status is Status.FAILED
    assert result.reason.startswith("sudo needs a password on this host")
    assert host.kinds() == ["facts"] and host.new_logins == 0
    assert (result.connections, result.round_trips, host.closed) == (1, 1, 1)


def test_a_refused_become_password_and_other_facts_failures_name_the_cause() -> None:
    refused = FakeHost(facts=[CommandResult(1, "", "Sorry, try again.\nsudo: 3 incorrect password attempts\n")])
    no_sh = FakeHost(facts=[CommandResult(127, "", "\nbash: line 1: sh: command not found\n")])

    assert run_host(entry(), options(refused)).reason.startswith("sudo refused the become password")
    assert (
        run_host(entry(), options(no_sh)).reason
        == "facts command failed (exit 127): bash: line 1: sh: command not found"
    )


def test_a_surprise_on_one_host_becomes_its_result_not_a_traceback() -> None:
    bad_config = FakeHost(refuse=InputError("~/.ssh/config line 3", "Bad option"))
    surprise = FakeHost(facts=[record("facts-fresh")], apply=[RuntimeError("boom")])

    assert run_host(entry(), options(bad_config)).reason == "~/.ssh/config line 3: Bad option"
    result = run_host(entry(), options(surprise))
    assert (result.status, result.reason) == (Status.FAILED, "internal error: RuntimeError: boom")
    assert surprise.closed == 1


def test_facts_output_that_is_not_facts_fails_with_the_parser_s_reason() -> None:
    host = FakeHost(facts=["Welcome to the host!\n@@END\n"])

    result = run_host(entry(), options(host))

    assert result.status is Status.FAILED
    assert result.reason.startswith("facts: the facts command printed no facts")


def test_an_unreachable_host_is_unreachable_and_never_sent_a_script() -> None:
    host = FakeHost(refuse=Unreachable("cannot connect to deb1: Connection refused"))

    result = run_host(entry(), options(host))

    assert result.status is Status.UNREACHABLE, result
    assert result.reason == "cannot connect to deb1: Connection refused"
    assert host.sent == [] and result.connections == 0


def test_a_connection_cut_during_the_facts_is_failed_after_connecting() -> None:
    host = FakeHost(facts=[cut("EOF")])

    result = run_host(entry(), options(host))

    assert (result.status, result.reason, result.connections) == (Status.FAILED, "connection to deb1 lost: EOF", 1)
    assert host.closed == 1


def test_error_findings_block_the_host_before_any_write() -> None:
    host = FakeHost(facts=[record("facts-fresh")])

    result = run_host(entry({**SETTINGS, "create_users": False}), options(host))

    assert result.status is Status.BLOCKED
    assert result.reason.startswith("USER-MISSING: ") and "(+1 more)" in result.reason
    assert "allow with --allow USER-MISSING" in result.reason
    assert host.kinds() == ["facts"] and result.users_created == []


def test_check_only_reports_checked_without_writing() -> None:
    host = FakeHost(facts=[record("facts-fresh")])

    result = run_host(entry(), options(host, check_only=True))

    assert (result.status, result.reason) == (Status.CHECKED, "no error findings")
    assert host.kinds() == ["facts"]


@pytest.mark.parametrize("mode", ["check_only", "dry_run", "apply"])
def test_a_host_another_run_is_changing_is_reported_locked_by_check_dry_run_and_apply(mode: str) -> None:
    """facts.sh saw the host's lock held (LOCKED): the findings are of a half-changed state, the lock is the
    news; the same result in every mode, exit code 1, nothing but the facts sent."""
    locked = edited("facts-fresh", "@@END\n", "@@LOCKED 20261201T000000Z-other 4242 2026-12-01T00:00:00Z\n@@END\n")
    host = FakeHost(facts=[locked])

    result = run_host(entry(), options(host, **({mode: True} if mode != "apply" else {})))

    assert result.status is Status.BLOCKED
    assert result.reason == (
        "host is locked, nothing written: held by run 20261201T000000Z-other 4242 2026-12-01T00:00:00Z"
        " (another sshd-setup run is changing it)"
    )
    assert host.kinds() == ["facts"] and report.exit_code([result]) == exitcodes.HOST_FAILURES


def test_a_converged_host_is_unchanged_after_one_round_trip() -> None:
    host = FakeHost(facts=[record("facts-converged")])

    result = run_host(entry(), options(host))

    assert result.status is Status.UNCHANGED
    assert result.reason == "every managed file already matches the inventory (2 checked)"
    assert host.kinds() == ["facts"] and result.round_trips == 1 and host.new_logins == 0


def test_dry_run_says_what_it_would_do_and_sends_only_the_facts_script() -> None:
    host = FakeHost(facts=[record("facts-fresh")])

    result = run_host(entry(), options(host, dry_run=True))

    assert result.status is Status.WOULD_CHANGE
    assert result.reason == "would write 2 file(s) and create user(s) johndoe, ops"
    assert result.users_created == ["johndoe", "ops"]  # would be created
    assert [f.path for f in result.files if f.changed] == ["/etc/ssh/sshd_config", "/etc/ssh/ca.pub"]
    assert host.kinds() == ["facts"] and result.backup is None


def test_interrupted_between_assessment_and_write_changes_nothing() -> None:
    host = FakeHost(facts=[record("facts-fresh")])

    result = run_host(entry(), options(host), proceed=lambda: False)

    assert (result.status, result.reason) == (Status.NOT_STARTED, INTERRUPTED_BEFORE_CHANGE)
    assert host.kinds() == ["facts"] and host.closed == 1


# --- the apply script's own exits ------------------------------------------------------------------------


def test_apply_writes_reloads_and_verifies_a_new_login() -> None:
    host = FakeHost(facts=[record("facts-fresh")], apply=[record("apply-changed")])

    result = run_host(entry(), options(host))

    assert result.status is Status.CHANGED, result
    assert result.reason == (
        "write 2 file(s) and create user(s) johndoe, ops; systemctl reload ssh.service"
        " (the new sshd wrote its pid file); new login verified"
    )
    assert (result.backup, result.users_created, result.reloaded) == (FIRST_RUN, ["johndoe", "ops"], True)
    assert host.kinds() == ["facts", "apply"] and host.new_logins == 1
    assert (result.connections, result.round_trips) == (2, 3)
    script = host.sent[1]
    assert "\nDO_RELOAD=1\n" in script and "\nFORCE_RELOAD=0\n" in script
    assert "\nensure_user johndoe\n" in script and "\ncas_check\n" in script


@pytest.mark.parametrize(
    ("meta", "staged"),
    [
        ("root:ssh:640", "/etc/ssh/sshd_config 640 root ssh "),  # kept, as core.filemodes.final_mode says
        ("UNKNOWN:root:600", "/etc/ssh/sshd_config - - - "),  # an owner without a name: copied on the host
    ],
)
def test_the_apply_script_stages_each_file_with_its_final_owner_and_mode(meta: str, staged: str) -> None:
    facts = edited("facts-fresh", "@@META root:root:644:regular file:", f"@@META {meta}:regular file:")
    host = FakeHost(facts=[facts], apply=[record("apply-changed")])

    assert run_host(entry(), options(host)).status is Status.CHANGED
    stages = [line.removeprefix("stage ") for line in host.sent[1].splitlines() if line.startswith("stage ")]
    assert [line[: len(staged)] for line in stages if line.startswith("/etc/ssh/sshd_config ")] == [staged]
    assert any(line.startswith("/etc/ssh/ca.pub 644 root root ") for line in stages), stages  # a new file


def test_the_host_s_lock_held_by_another_run_blocks_with_its_owner() -> None:
    host = FakeHost(facts=[record("facts-more")], apply=[record("apply-lock-held")])

    result = run_host(entry(SETTINGS_MORE), options(host))

    assert result.status is Status.BLOCKED
    assert result.reason == "host is locked, nothing written: held by run 20261201T000000Z-other 1 now"
    assert result.backup is None and result.users_created == [] and host.new_logins == 0


def test_a_file_changed_since_the_facts_blocks_by_compare_and_swap() -> None:
    host = FakeHost(facts=[record("facts-more")], apply=[record("apply-cas-refused")])

    result = run_host(entry(SETTINGS_MORE), options(host))

    assert result.status is Status.BLOCKED
    assert result.reason == "changed since facts were read: /etc/ssh/sshd_config; nothing written (run again)"
    assert host.new_logins == 0


def test_a_lock_taken_over_from_a_dead_run_is_noted() -> None:
    took_over = edited(  # state.sh take_lock and clean_leftovers
        "apply-changed",
        "@@LOCK held\n",
        "@@LOCK took-over 20261130T000000Z-dead 4242 x\n@@LOCK held\n@@CLEANED /etc/ssh/.ca.pub.sshd-setup-new.x\n",
    )
    host = FakeHost(facts=[record("facts-fresh")], apply=[took_over])

    result = run_host(entry(), options(host))

    assert result.status is Status.CHANGED
    assert result.details == [
        "took over the lock left by run 20261130T000000Z-dead, whose process on the host is gone",
        "removed leftovers of a cut run: /etc/ssh/.ca.pub.sshd-setup-new.x",
    ]


def test_sshd_t_refusing_the_assembled_tree_fails_with_nothing_changed() -> None:
    host = FakeHost(facts=[record("facts-more")], apply=[record("apply-validate-failed")])

    result = run_host(entry(SETTINGS_MORE), options(host))

    assert result.status is Status.FAILED
    assert result.reason == (
        "sshd -t refused the assembled tree, nothing changed: "
        "/etc/ssh/sshd_config.d/zz-bad.conf: line 1: Bad configuration option: NoSuchKeyword"
    )
    assert result.backup is None and result.users_created == [] and host.new_logins == 0


def test_a_missing_sshd_helper_fails_validation_with_nothing_changed() -> None:
    missing = "/usr/lib/openssh/sshd-session (SshdSessionPath/SshdAuthPath) is not an executable file"
    host = FakeHost(facts=[record("facts-more")], apply=[with_output("apply-validate-failed", missing)])

    result = run_host(entry(SETTINGS_MORE), options(host))

    assert result.status is Status.FAILED
    assert result.reason == f"the assembled tree names a missing sshd helper, nothing changed: {missing}"


def test_only_a_user_to_create_changes_without_a_reload_or_guard() -> None:
    ops_deleted_edited = edited("facts-converged", "@@USER ops 1001 /home/ops\n", "")
    created = (
        "@@LOCK held\n@@STEP validated\n@@USER created ops\n@@BACKUP 20261201T180000Z-0c0c0c\n@@STEP installed\n@@END\n"
    )
    host = FakeHost(facts=[ops_deleted_edited], apply=[created])

    result = run_host(entry(), options(host))

    assert result.status is Status.CHANGED
    assert result.reason == "create user(s) ops; no file changed, no reload needed"
    assert result.users_created == ["ops"] and not result.reloaded and host.new_logins == 0


def test_a_failed_stage_fails_with_nothing_changed() -> None:
    stage_failed = "@@LOCK held\n@@FAIL stage\n@@OUTPUT\nY291bGQgbm90IHN0YWdlOiAvZXRjL3NzaC9jYS5wdWIK\n@@EOF\n@@END\n"
    host = FakeHost(facts=[record("facts-fresh")], apply=[stage_failed])  # apply.sh: fail stage "could not stage:..."

    result = run_host(entry(), options(host))

    assert (result.status, result.reason) == (
        Status.FAILED,
        "stage failed, nothing changed: could not stage: /etc/ssh/ca.pub",
    )


def test_a_failed_reload_is_rolled_back_by_the_script_and_kept_creations_are_named() -> None:
    host = FakeHost(facts=[record("facts-more")], apply=[record("apply-reload-failed")])

    result = run_host(entry(SETTINGS_MORE), options(host))

    assert result.status is Status.ROLLED_BACK, result
    assert result.reason == (
        f"reload failed (reload failed (test hook)); restored {RELOAD_FAILED_RUN}: sshd is up again;"
        " created (kept): user vmuser, directory /etc/ssh/principals"
    )
    assert (result.backup, result.users_created) == (RELOAD_FAILED_RUN, ["vmuser"])
    assert host.new_logins == 0  # the script's own rollback: the guard never ran


def test_a_failed_reload_whose_rollback_leaves_sshd_dead_is_failed() -> None:
    dead_edited = edited("apply-reload-failed", "@@ROLLEDBACK ok", "@@ROLLEDBACK dead")
    host = FakeHost(facts=[record("facts-more")], apply=[dead_edited])

    result = run_host(entry(SETTINGS_MORE), options(host))

    assert result.status is Status.FAILED
    assert f"restored {RELOAD_FAILED_RUN}: sshd is NOT running after the rollback" in result.reason


def test_a_failed_install_whose_restore_is_not_proved_by_hash_says_which_file() -> None:
    incomplete_edited = edited("apply-reload-failed", "@@FAIL reload", "@@FAIL install").replace(
        f"@@RESTORED {RELOAD_FAILED_RUN}", "@@RESTORE-INCOMPLETE /etc/ssh/sshd_config"
    )
    host = FakeHost(facts=[record("facts-more")], apply=[incomplete_edited])

    result = run_host(entry(SETTINGS_MORE), options(host))

    assert result.status is Status.FAILED
    assert result.reason.startswith(
        "install failed (reload failed (test hook)); restore incomplete: /etc/ssh/sshd_config"
    )


def test_an_apply_script_that_stops_without_its_end_record_is_failed() -> None:
    killed = CommandResult(137, record("apply-changed").split("@@STEP installed")[0], "Killed\n")
    host = FakeHost(facts=[record("facts-fresh")], apply=[killed])

    result = run_host(entry(), options(host))

    assert (result.status, result.reason) == (Status.FAILED, "apply stopped unexpectedly (exit 137): Killed")
    assert result.backup == FIRST_RUN and host.new_logins == 0


def test_a_connection_cut_during_the_apply_script_is_failed_not_unreachable() -> None:
    host = FakeHost(facts=[record("facts-fresh")], apply=[cut("EOF")])

    result = run_host(entry(), options(host))

    assert (result.status, result.reason) == (Status.FAILED, "connection to deb1 lost: EOF")
    assert host.kinds() == ["facts", "apply"] and host.new_logins == 0 and host.closed == 1


def test_no_reload_writes_and_validates_but_neither_reloads_nor_guards() -> None:
    host = FakeHost(facts=[record("facts-users-kept")], apply=[record("apply-not-reloaded")])

    result = run_host(entry(), options(host, reload=False))

    assert result.status is Status.CHANGED
    assert result.reason == "written and validated, not reloaded (--no-reload): write 2 file(s)"
    assert not result.reloaded and host.new_logins == 0
    assert "\nDO_RELOAD=0\n" in host.sent[1]


def test_files_sshd_has_not_loaded_force_a_guarded_reload() -> None:
    host = FakeHost(facts=[record("facts-pending")], apply=[record("apply-pending-reloaded")])

    result = run_host(entry(), options(host))

    assert result.status is Status.CHANGED, result
    assert result.reason.startswith("reload: the running sshd had not loaded the files on disk; systemctl reload")
    assert result.reason.endswith("; new login verified") and host.new_logins == 1
    assert "\nFORCE_RELOAD=1\n" in host.sent[1]


def test_pending_files_with_no_reload_are_unchanged_and_say_so() -> None:
    host = FakeHost(facts=[record("facts-pending")])

    result = run_host(entry(), options(host, reload=False))

    assert result.status is Status.UNCHANGED
    assert result.reason.endswith("(--no-reload: not reloaded)") and "sshd has not loaded" in result.reason
    assert host.kinds() == ["facts"]


# --- the lockout guard and its rollback ------------------------------------------------------------------

GUARD_RESTORED_EDITED = guard_restored()


def test_a_failed_guard_restores_the_backup_and_a_new_login_works_again() -> None:
    host = FakeHost(facts=[record("facts-fresh")], apply=[record("apply-changed")], rollback=[GUARD_RESTORED_EDITED])
    host.login_works = lambda: "rollback" in host.kinds()

    result = run_host(entry(), options(host))

    assert result.status is Status.ROLLED_BACK, result
    assert result.reason == f"lockout guard failed ({NO_SHELL}); restored {FIRST_RUN} and sshd answers again"
    assert host.kinds() == ["facts", "apply", "rollback"]
    assert f"\nrollback_to {FIRST_RUN} 0\n" in host.sent[2]  # 0: the apply already saved this state
    assert host.logins_after("apply") == [guard_attempts()]  # every retry a NEW login, for 5 s
    assert host.logins_after("rollback") == [1]
    assert result.backup == FIRST_RUN and result.connections == 3


def test_a_new_login_whose_connection_drops_fails_the_guard_with_that_reason() -> None:
    dropped = Unreachable("connection to deb1 lost: EOF")
    host = FakeHost(facts=[record("facts-fresh")], apply=[record("apply-changed")], rollback=[GUARD_RESTORED_EDITED])
    host.login_works = lambda: dropped if "rollback" not in host.kinds() else True

    result = run_host(entry(), options(host))

    assert result.status is Status.ROLLED_BACK
    assert result.reason.startswith("lockout guard failed (connection to deb1 lost: EOF); restored ")


def test_a_failed_guard_whose_restore_is_not_proved_reports_the_files() -> None:
    incomplete = "@@LOCK joined\n@@RESTORE-INCOMPLETE /etc/ssh/ca.pub\n@@END\n"  # state.sh restore_backup
    host = FakeHost(
        facts=[record("facts-fresh")], apply=[record("apply-changed")], rollback=[incomplete], logins=[False]
    )

    result = run_host(entry(), options(host))

    assert result.status is Status.FAILED
    assert result.reason == f"lockout guard failed ({NO_SHELL}); restore incomplete: /etc/ssh/ca.pub"
    assert host.new_logins == guard_attempts()  # no second guard after an unproved restore


def test_a_failed_guard_whose_rollback_does_not_help_is_failed() -> None:
    host = FakeHost(
        facts=[record("facts-fresh")],
        apply=[record("apply-changed")],
        rollback=[GUARD_RESTORED_EDITED],
        logins=[Unreachable("new ssh login to deb1: Permission denied (publickey)")],
    )

    result = run_host(entry(), options(host))

    assert result.status is Status.FAILED
    assert result.reason == (
        "lockout guard failed (new ssh login to deb1: Permission denied (publickey)); "
        f"rollback of {FIRST_RUN} did not help: new ssh login to deb1: Permission denied (publickey)"
    )
    assert host.logins_after("apply") == host.logins_after("rollback") == [guard_attempts(0.05)]  # every 50 ms


def test_a_failed_guard_whose_rollback_script_fails_does_not_guard_again() -> None:
    refused = record("apply-lock-held")
    host = FakeHost(facts=[record("facts-fresh")], apply=[record("apply-changed")], rollback=[refused], logins=[False])

    result = run_host(entry(), options(host))

    assert result.status is Status.FAILED
    assert result.reason.endswith(f"rollback of {FIRST_RUN} did not help: rollback failed")
    assert host.new_logins == guard_attempts()


def test_a_failed_guard_whose_connection_is_cut_cannot_roll_back() -> None:
    host = FakeHost(
        facts=[record("facts-fresh")], apply=[record("apply-changed")], rollback=[cut("reset")], logins=[False]
    )

    result = run_host(entry(), options(host))

    assert result.status is Status.FAILED
    assert result.reason == f"lockout guard failed ({NO_SHELL}); rollback impossible: connection to deb1 lost: reset"


def test_a_failed_guard_without_a_backup_name_sends_no_rollback() -> None:
    no_backup_edited = edited("apply-pending-reloaded", "@@BACKUP 20261201T174941Z-8a5483\n", "")
    host = FakeHost(facts=[record("facts-pending")], apply=[no_backup_edited], logins=[False])

    result = run_host(entry(), options(host))

    assert result.status is Status.FAILED
    assert result.reason == f"lockout guard failed ({NO_SHELL}) and no backup name is known"
    assert host.kinds() == ["facts", "apply"]


# --- a held host (apply after a confirmation) ------------------------------------------------------------


def test_a_held_host_keeps_its_connection_and_applies_the_same_assessment() -> None:
    host = FakeHost(facts=[record("facts-fresh")], apply=[record("apply-changed")])

    held = hold_host(entry(), options(host))

    assert held.pending and held.result.status is Status.WOULD_CHANGE
    assert held.result.reason == "would write 2 file(s) and create user(s) johndoe, ops"
    assert host.closed == 0  # kept open for apply()
    result = held.apply()
    assert result.status is Status.CHANGED and result.backup == FIRST_RUN
    assert (host.sessions, host.closed, host.kinds()) == (1, 1, ["facts", "apply"])
    assert held.apply() is result and host.kinds() == ["facts", "apply"]  # applied once


def test_a_held_host_not_kept_open_reconnects_to_apply() -> None:
    host = FakeHost(facts=[record("facts-fresh")], apply=[record("apply-changed")])

    held = hold_host(entry(), options(host), keep_open=False)
    assert host.closed == 1
    result = held.apply()

    assert result.status is Status.CHANGED
    assert (host.sessions, result.connections) == (2, 3)  # facts, apply, the guard's new login


def test_a_released_held_host_is_not_started_and_closed() -> None:
    host = FakeHost(facts=[record("facts-fresh")])

    result = hold_host(entry(), options(host)).release("not confirmed")

    assert (result.status, result.reason) == (Status.NOT_STARTED, "not confirmed")
    assert host.closed == 1 and host.kinds() == ["facts"]


def test_a_held_host_with_nothing_to_do_is_closed_at_once() -> None:
    host = FakeHost(facts=[record("facts-converged")])

    held = hold_host(entry(), options(host))

    assert not held.pending and held.result.status is Status.UNCHANGED and host.closed == 1


# --- rollback, rollback --list, uninstall ----------------------------------------------------------------


def test_rollback_restores_the_state_before_the_latest_run_proved_and_guarded() -> None:
    host = FakeHost(facts=[record("facts-rollback")], rollback=[record("rollback-restored")])

    result = rollback_host(entry(), options(host), None)

    assert result.status is Status.CHANGED, result
    assert result.reason == (
        f"restored the state before run {FIRST_RUN} (2 file(s), proved by hash); reloaded, new login verified"
    )
    assert result.backup == FIRST_RUN and host.new_logins == 1
    assert "SEND_BACKUP=latest" in host.sent[0] and f"\nrollback_to {FIRST_RUN} 1\n" in host.sent[1]


def test_rollback_to_a_named_run_sends_that_name() -> None:
    host = FakeHost(facts=[record("facts-rollback")], rollback=[record("rollback-restored")])

    result = rollback_host(entry(), options(host, reload=False), FIRST_RUN)

    assert result.status is Status.CHANGED and result.reason.endswith("; not reloaded (--no-reload)")
    assert f"SEND_BACKUP={FIRST_RUN}" in host.sent[0] and "\nDO_RELOAD=0\n" in host.sent[1]
    assert host.new_logins == 0


def test_rollback_to_an_unknown_run_is_refused_with_the_backups_there() -> None:
    host = FakeHost(facts=[record("facts-rollback")])

    result = rollback_host(entry(), options(host), "20200101T000000Z-nope")

    assert result.status is Status.BLOCKED
    assert result.reason == f"no backup 20200101T000000Z-nope on this host (backups here: {FIRST_RUN})"
    assert host.kinds() == ["facts"]


def test_rollback_dry_run_says_what_it_would_restore() -> None:
    host = FakeHost(facts=[record("facts-rollback")])

    result = rollback_host(entry(), options(host, dry_run=True), None)

    assert (result.status, result.reason) == (
        Status.WOULD_CHANGE,
        f"would restore the state before run {FIRST_RUN}: 2 file(s)",
    )
    assert [f.path for f in result.files] == ["/etc/ssh/ca.pub", "/etc/ssh/sshd_config"]


def test_rollback_refused_by_the_script_is_failed_with_its_step() -> None:
    host = FakeHost(facts=[record("facts-rollback")], rollback=[record("rollback-refused")])

    result = rollback_host(entry(), options(host), None)

    assert result.status is Status.FAILED
    assert result.reason == f"rollback to {FIRST_RUN} refused at backup: a backup named {FIRST_RUN} exists already"


def test_rollback_while_another_run_holds_the_lock_is_blocked() -> None:
    host = FakeHost(facts=[record("facts-rollback")], rollback=[record("apply-lock-held")])

    result = rollback_host(entry(), options(host), None)

    assert result.status is Status.BLOCKED and result.reason.startswith("host is locked, nothing written")


def test_rollback_not_proved_by_hash_is_failed() -> None:
    incomplete_edited = edited("rollback-restored", f"@@RESTORED {FIRST_RUN}", "@@RESTORE-INCOMPLETE /etc/ssh/ca.pub")
    host = FakeHost(facts=[record("facts-rollback")], rollback=[incomplete_edited])

    result = rollback_host(entry(), options(host), None)

    assert (result.status, result.reason) == (
        Status.FAILED,
        f"rollback to {FIRST_RUN}: restore incomplete: /etc/ssh/ca.pub",
    )
    assert host.new_logins == 0


def test_a_rollback_whose_guard_fails_puts_back_the_state_it_saved() -> None:
    host = FakeHost(facts=[record("facts-rollback")], rollback=[record("rollback-restored"), GUARD_RESTORED_EDITED])
    host.login_works = lambda: host.kinds().count("rollback") == 2
    run = options(host)

    result = rollback_host(entry(), run, None)

    assert result.status is Status.ROLLED_BACK, result
    assert f"restored {run.run_id} and sshd answers again" in result.reason
    assert f"\nrollback_to {run.run_id} 0\n" in host.sent[2]  # back to the state this rollback saved
    assert result.backup == FIRST_RUN


def test_list_shows_every_backup_run_in_order() -> None:
    host = FakeHost(facts=[record("facts-list")])

    result = list_host(entry(), options(host))

    assert (result.status, result.reason) == (Status.CHECKED, "5 backup(s)")
    assert result.runs[0].name == FIRST_RUN and result.runs[0].first
    assert [r.kind for r in result.runs] == ["apply", "rollback", "apply", "apply", "apply"]
    assert host.kinds() == ["facts"]


def test_uninstall_dry_run_would_restore_the_first_backup() -> None:
    host = FakeHost(facts=[record("facts-rollback")])

    result = uninstall_host(entry(), options(host, dry_run=True))

    assert result.status is Status.WOULD_CHANGE and result.reason.startswith("would uninstall: ")
    assert "SEND_BACKUP=first" in host.sent[0] and host.kinds() == ["facts"]


UNINSTALLED_EDITED = (  # apply.sh run_apply with KIND=uninstall: state.sh put_back_first after the install
    "@@LOCK held\n@@STEP validated\n@@BACKUP 20261201T180000Z-0d0d0d\n@@STEP installed\n"
    f"@@STEP put-back {FIRST_RUN}\n@@STEP reloaded\n@@SEEN pidfile\n@@END\n"
)


def test_uninstall_puts_back_the_first_backup_and_guards() -> None:
    host = FakeHost(facts=[record("facts-rollback")], apply=[UNINSTALLED_EDITED])

    result = uninstall_host(entry(), options(host))

    assert result.status is Status.CHANGED, result
    assert result.reason == "uninstalled (2 file(s); users kept); reloaded, new login verified"
    assert result.backup == "20261201T180000Z-0d0d0d" and host.new_logins == 1
    script = host.sent[1]
    assert "\nKIND=uninstall\n" in script and "\nremove /etc/ssh/ca.pub\n" in script


def test_uninstall_of_a_host_sshd_setup_never_touched_is_unchanged() -> None:
    host = FakeHost(facts=[record("facts-fresh")])

    result = uninstall_host(entry(), options(host))

    assert (result.status, result.reason) == (Status.UNCHANGED, "sshd-setup has left nothing on this host")


def test_uninstall_refuses_an_unreadable_or_damaged_main_file() -> None:
    unreadable = FakeHost(facts=[with_file(record("facts-rollback"), "/etc/ssh/sshd_config", None)])
    assert (
        uninstall_host(entry(), options(unreadable)).reason == "/etc/ssh/sshd_config does not exist or cannot be read"
    )

    facts = record("facts-rollback")
    main = parse_facts(facts)[0].files["/etc/ssh/sshd_config"].text or ""
    damaged_edited = with_file(facts, "/etc/ssh/sshd_config", main.replace("# END sshd-setup managed block", "# E"))
    damaged = FakeHost(facts=[damaged_edited])
    result = uninstall_host(entry(), options(damaged))
    assert result.status is Status.BLOCKED and result.reason.startswith("MANAGED-BLOCK-DAMAGED: /etc/ssh/sshd_config: ")
    assert damaged.kinds() == ["facts"]


def test_uninstall_blocked_by_the_lock_or_failed_and_rolled_back() -> None:
    locked = FakeHost(facts=[record("facts-rollback")], apply=[record("apply-lock-held")])
    assert uninstall_host(entry(), options(locked)).status is Status.BLOCKED

    failed_edited = edited("apply-reload-failed", "@@USER created vmuser\n@@DIR created /etc/ssh/principals\n", "")
    failed = FakeHost(facts=[record("facts-rollback")], apply=[failed_edited])
    result = uninstall_host(entry(), options(failed))
    assert (result.status, result.reason) == (
        Status.ROLLED_BACK,
        "uninstall failed at reload: reload failed (test hook)",
    )

    incomplete = UNINSTALLED_EDITED.replace("@@STEP reloaded", "@@RESTORE-INCOMPLETE /etc/ssh/ca.pub\n@@STEP reloaded")
    unproved = FakeHost(facts=[record("facts-rollback")], apply=[incomplete])
    result = uninstall_host(entry(), options(unproved))
    assert (result.status, result.reason) == (Status.FAILED, "uninstall: restore incomplete: /etc/ssh/ca.pub")
    assert unproved.new_logins == 0
