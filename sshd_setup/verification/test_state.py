"""The same facts → plan → findings path as `sshd-setup check`: no error finding, nothing left to apply."""

from __future__ import annotations

from sshd_setup.core.desired import Mapping
from sshd_setup.core.finding import Severity
from sshd_setup.verification.target import VerifyHost, expect_none, fail


def test_no_error_findings(target: VerifyHost) -> None:
    """`sshd-setup check` would find no error (codes given with --allow are not counted)."""
    findings = target.assessment.findings
    errors = [f for f in findings if f.severity is Severity.ERROR and f.code not in target.allow]
    expect_none([f"{f.code}{' at ' + f.where if f.where else ''}: {f.message}" for f in errors])


def test_nothing_to_apply(target: VerifyHost) -> None:
    """`sshd-setup apply` would change nothing: every managed file already matches the inventory."""
    assessment = target.assessment
    if not assessment.plan.files and assessment.plan.findings:
        first = assessment.plan.findings[0]
        fail(f"cannot plan this host: {first.code}: {first.message}")
    pending = [f"{c.path}: {c.reason}" for c in assessment.plan.changes]
    pending += [f"create directory {d}" for d in assessment.plan.directories]
    pending += [f"create user {u}" for u in assessment.users_to_create]
    if pending:
        fail("apply would change: " + "; ".join(pending))


def test_mapped_user_exists(target: VerifyHost, mapping: Mapping) -> None:
    """The mapped user exists on the host (the gateway does not create Unix users)."""
    if not target.host.user(mapping.user).exists:
        fail(f"user {mapping.user} does not exist (create it, or set create_users: true and apply)")


def test_running_sshd_loaded_the_files(target: VerifyHost) -> None:
    """The running sshd has loaded the configuration on disk (no file changed since its start or reload)."""
    pending = target.assessment.pending
    if pending.needs_reload:
        fail(
            f"the running sshd has not loaded {pending.describe()} (changed after it read its configuration; "
            f"{pending.pid_file or 'pid file'}): certificate logins may not work yet; run `sshd-setup apply`"
        )
