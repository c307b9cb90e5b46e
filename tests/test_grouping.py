"""The grouped human output of a fleet run (sshd_setup/grouping.py): its size follows the kinds of results."""

from __future__ import annotations

import json

from sshd_setup.core.finding import Finding, Severity
from sshd_setup.grouping import View, compress_hosts, plain, render
from sshd_setup.report import FileReport, HostResult, Status, to_json

INCLUDE = Finding("INCLUDE-NO-MATCH", Severity.INFO, "Include matches no file", path="/etc/ssh/sshd_config", line=12)
PASSWORD = Finding(
    "PASSWORD-AUTH-ON", Severity.WARNING, "PasswordAuthentication yes", hint="set it to no once certificates work"
)
PORT = Finding("PORT-NOT-22", Severity.ERROR, "sshd listens on 2222", path="/etc/ssh/sshd_config", line=3)
DIFF_A = "".join(
    f"{line}\n"
    for line in [
        "--- /etc/ssh/sshd_config",
        "+++ /etc/ssh/sshd_config",
        "@@ -1,2 +1,5 @@",
        "+# BEGIN sshd-setup managed block: gateway CA",
        "+TrustedUserCAKeys /etc/ssh/ca.pub",
        "+# END sshd-setup managed block: gateway CA",
        " Include /etc/ssh/sshd_config.d/*.conf",
        " PasswordAuthentication yes",
    ]
)
DIFF_B = DIFF_A.replace("PasswordAuthentication yes", "PasswordAuthentication no")
FAILED = {17, 503, 999}


def synthetic(count: int, dry_run: bool) -> list[HostResult]:
    results = []
    for n in range(1, count + 1):
        name = f"web{n}"
        findings = [INCLUDE, PASSWORD] + ([PORT] if n in FAILED else [])
        if n in FAILED:
            results.append(HostResult(name, Status.BLOCKED, f"PORT-NOT-22: sshd listens on 2222 ({name})", findings))
            continue
        diff = DIFF_A if n % 2 else DIFF_B
        files = [
            FileReport("/etc/ssh/sshd_config", "add the managed blocks", True, diff),
            FileReport(
                "/etc/ssh/ca.pub", "create: 1 CA key", True, "--- /dev/null\n+++ /etc/ssh/ca.pub\n+ssh-ed25519 AAAA\n"
            ),
        ]
        status = Status.WOULD_CHANGE if dry_run else Status.CHANGED
        results.append(HostResult(name, status, "would write 2 file(s)", findings, files, users_created=["alice"]))
    return results


def test_a_thousand_hosts_render_in_under_60_lines() -> None:
    results = synthetic(1000, dry_run=True)
    lines = render(results, View("dry-run", "sshd-setup apply --dry-run", 42.25))
    text = plain(lines)
    assert len(lines) < 60, text
    # each finding once, with its hosts compressed
    assert text.count("INCLUDE-NO-MATCH") == 1
    assert (
        "info INCLUDE-NO-MATCH /etc/ssh/sshd_config:12: Include matches no file — on 1000 hosts (all): web1…web1000"
        in text
    )
    assert "error PORT-NOT-22" in text and "on 3 hosts: web17, web503, web999" in text
    assert text.count("hint: set it to no once certificates work") == 1
    # each distinct diff once, with how many hosts share it
    assert text.count("+TrustedUserCAKeys /etc/ssh/ca.pub") == 2
    assert "same change on 500 hosts: web2, web4" in text and "same change on 497 hosts: web1, web3" in text
    # a dry-run never speaks in the past tense
    assert "user alice: would be created" in text and "created (" not in text.replace("would be created (", "")
    # the summary groups by status and reason, with the elapsed time
    assert "sshd-setup apply --dry-run: 1000 hosts in 42.2 s" in text
    assert "997  web1…web16, web18…web502, web504…web998, web1000: would write 2 file(s)" in text
    assert "997 would-change, 3 blocked" in text


def test_json_keeps_every_hosts_detail() -> None:
    results = synthetic(1000, dry_run=True)
    data = json.loads(json.dumps(to_json(results, "dry-run", elapsed=1.5)))
    assert len(data["hosts"]) == 1000
    web2 = data["hosts"][1]
    assert set(web2) >= {"host", "status", "reason", "findings", "files", "backup", "users_created", "seconds"}
    assert web2["files"][0]["diff"] == DIFF_B and len(web2["findings"]) == 2
    assert data["summary"]["would-change"] == 997 and data["summary"]["blocked"] == 3
    assert data["elapsed_seconds"] == 1.5 and data["interrupted"] is False and data["exit_code"] == 1


def test_apply_output_says_what_was_done() -> None:
    text = plain(render(synthetic(40, dry_run=False), View("apply", "sshd-setup apply", 3.0)))
    assert "changed: same change on 39 hosts: web1…web16, web18…web40" in text  # no diffs: one group
    assert "user alice: created (mapped; create_users is on)" in text
    assert "+TrustedUserCAKeys" not in text  # diffs are for the dry-run


def test_quiet_and_min_severity_hide_lesser_findings_and_changes() -> None:
    results = synthetic(30, dry_run=True)
    quiet = plain(render(results, View("dry-run", "t", 1.0, quiet=True)))
    assert "INCLUDE-NO-MATCH" not in quiet and "PASSWORD-AUTH-ON" in quiet and "PORT-NOT-22" in quiet
    assert "same change" not in quiet and "would-change" in quiet
    errors = plain(render(results, View("dry-run", "t", 1.0, min_severity=Severity.ERROR)))
    assert "PASSWORD-AUTH-ON" not in errors and "error PORT-NOT-22" in errors and "same change" in errors


def test_many_reasons_of_one_status_are_capped() -> None:
    results = [HostResult(f"h{n}", Status.UNREACHABLE, f"ssh to 10.0.0.{n}:22: refused") for n in range(1, 40)]
    text = plain(render(results, View("check", "sshd-setup check", 1.0)))
    assert len(text.splitlines()) < 10
    assert "34  h6…h39: 34 other reasons (see --json)" in text


def test_host_lists_compress_runs_and_keep_other_names() -> None:
    assert compress_hosts([f"op{n}" for n in range(25, 0, -1)]) == "op1…op25"
    assert compress_hosts(["db", "op2", "op1", "op3", "op5", "op09", "op10", "op11"]) == "db, op1…op3, op5, op09…op11"
    assert compress_hosts(["a9", "a010"]) == "a9, a010"
    many = compress_hosts([f"h{n}" for n in range(0, 100, 2)], limit=3)
    assert many == "h0, h2, h4 … +47 more"


def test_output_that_is_not_a_terminal_is_never_wrapped() -> None:
    import subprocess
    import sys

    code = (
        "from sshd_setup.grouping import Span; from sshd_setup.output import print_lines; "
        "print_lines([(Span('a sentence that goes on ' * 20, 'bold'), Span(' and ends here'))])"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert run.stdout.count("\n") == 1 and run.stdout.rstrip().endswith("goes on  and ends here"), run.stdout


def test_one_finding_at_different_lines_is_one_group() -> None:
    at12 = Finding("INCLUDE-NO-MATCH", Severity.INFO, "no file", path="/etc/ssh/sshd_config", line=12)
    at17 = Finding("INCLUDE-NO-MATCH", Severity.INFO, "no file", path="/etc/ssh/sshd_config", line=17)
    results = [HostResult(f"op{n}", Status.CHECKED, "ok", [at12 if n % 5 else at17]) for n in range(1, 26)]
    text = plain(render(results, View("check", "sshd-setup check", 1.0)))
    assert "info INCLUDE-NO-MATCH /etc/ssh/sshd_config (lines 12, 17): no file — on 25 hosts (all): op1…op25" in text
