"""The host protocol (sshd_setup/remote/protocol.py): the records the remote scripts print, read into typed
results. Records are printed here by apply.sh's own functions run on this machine's /bin/sh, or written out
as the scripts print them."""

from __future__ import annotations

import base64
import subprocess

from sshd_setup.remote import script
from sshd_setup.remote.protocol import ApplyOutcome, parse_apply_output, parse_facts_output, reached_end


def _apply_sh(body: str) -> str:
    """stdout of apply.sh's functions running `body` (its top level only defines things)."""
    proc = subprocess.run(["sh", "-c", script("apply.sh") + "\n" + body], capture_output=True, text=True, timeout=30)
    return proc.stdout


def test_a_failed_step_comes_back_with_its_whole_output() -> None:
    out = _apply_sh('fail validate "line 1: Bad option" "  second line  " "@@END not a record"')
    outcome = parse_apply_output(out)
    assert outcome.failed and outcome.failed_step == "validate" and outcome.ended
    assert outcome.output == "line 1: Bad option\n  second line  \n@@END not a record"
    assert outcome.rollback_ok is None and outcome.backup is None and outcome.steps == ()


def test_a_whole_run_is_read_in_full() -> None:
    out = _apply_sh(
        'r "LOCK took-over 20261201T090000Z-dead00 12 2026-12-01T09:00:00Z"; r "LOCK held"; r "CLEANED /a /b";'
        ' r "STEP validated"; r "USER created bob"; r "DIR created /etc/ssh/p"; r "DIR created /etc/ssh/q";'
        ' r "DIR fixed /etc/ssh"; r "BACKUP 20261201T100000Z-aaaaaa"; r "STEP installed"; r "REMOVED /etc/ssh/p/old";'
        ' r "DIR removed /etc/ssh/q"; r "STEP reloaded"; r "SEEN pidfile"; r "END"'
    )
    assert parse_apply_output(out) == ApplyOutcome(
        backup="20261201T100000Z-aaaaaa",
        seen="pidfile",
        lock="held",
        took_over=("20261201T090000Z-dead00",),
        cleaned=("/a", "/b"),
        users_created=("bob",),
        dirs_created=("/etc/ssh/p", "/etc/ssh/q"),
        dirs_removed=("/etc/ssh/q",),
        removed=("/etc/ssh/p/old",),
        steps=("validated", "installed", "reloaded"),
        ended=True,
    )
    assert parse_apply_output(out).kept_creations == ("user bob", "directory /etc/ssh/p")


def test_a_reload_that_failed_says_whether_the_rollback_brought_sshd_back() -> None:
    output = base64.b64encode(b"Job for ssh.service failed\n").decode()
    for word, ok in (("ok", True), ("dead", False)):
        text = f"@@LOCK joined\n@@FAIL reload\n@@OUTPUT\n{output}\n@@EOF\n@@RESTORE-INCOMPLETE /etc/ssh/ca.pub\n"
        outcome = parse_apply_output(text + f"@@ROLLEDBACK {word}\n@@END\n")
        assert (outcome.failed_step, outcome.output, outcome.rollback_ok) == (
            "reload",
            "Job for ssh.service failed",
            ok,
        )
        assert outcome.lock == "joined" and outcome.restore_incomplete == "/etc/ssh/ca.pub" and outcome.restored is None


def test_a_cut_script_is_not_an_ended_one() -> None:
    outcome = parse_apply_output("@@LOCK held\n@@STEP validated\n")
    assert not outcome.ended and not outcome.failed and not reached_end("@@LOCK held\n")
    assert reached_end("@@BEGIN 1\n@@END\n")


def test_facts_output_holds_the_facts_and_the_backups() -> None:
    output = parse_facts_output(
        "@@BEGIN 1\n@@INIT systemd\n@@DIR /etc/ssh\n@@RUN 1 20261201T100000Z-aaaaaa apply 1 /etc/ssh/sshd_config\n"
        "@@BACKUPS 20261201T100000Z-aaaaaa\n@@END\n"
    )
    assert output.facts.init == "systemd" and "/etc/ssh" in output.facts.dirs
    assert output.backup_names == ["20261201T100000Z-aaaaaa"]
    assert output.backups.names == ["20261201T100000Z-aaaaaa"] and output.backups.runs[0].first


def test_apply_and_rollback_scripts_set_the_same_header_variables() -> None:
    """apply.sh and state.sh read one set of variables: every script sets them all, quoted, before the code."""
    import shlex

    from sshd_setup.core.service import ServicePlan
    from sshd_setup.remote import apply_script, rollback_script

    service = ServicePlan(
        "systemd", "ssh", "systemctl reload ssh", "systemctl is-active -q ssh", "systemctl start ssh", ""
    )
    common = {"run_id": "20261201T100000Z-aaaaaa", "reload": True, "service": service, "main": "/etc/ssh/it's"}
    applied = apply_script(keep=5, directories=(), files=[("/etc/ssh/ca.pub", "key\n", None)], **common)
    rolled = rollback_script(backup="20261201T090000Z-bbbbbb", **common)

    def header(text: str) -> dict[str, str]:
        lines = text.split("\n# Apply staged files", 1)[0].splitlines()
        return dict(line.split("=", 1) for line in lines)

    assert header(applied).keys() == header(rolled).keys() >= {"RUN", "KIND", "KEEP", "MAIN", "PIDFILE", "TEST_HOOK"}
    assert header(rolled)["KIND"] == "rollback" and header(rolled)["KEEP"] == "1000"
    assert header(applied)["MAIN"] == header(rolled)["MAIN"] == shlex.quote("/etc/ssh/it's")
    assert header(applied)["MANAGED"] == "/etc/ssh/ca.pub" and header(rolled)["MANAGED"] == "''"
