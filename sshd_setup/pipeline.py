"""The per-host pipeline: facts (1 round trip) → plan + findings (pure) → apply (1) → guard (new connection).

Every step's failure becomes this host's result; nothing here stops or hides another host.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sshd_setup.assessment import Assessment, assess, blocking_findings, login_user, script_mode
from sshd_setup.core.finding import Finding
from sshd_setup.core.runs import new_run_id
from sshd_setup.core.service import ServicePlan
from sshd_setup.errors import SshdSetupError
from sshd_setup.gather import facts_script
from sshd_setup.inventory import HostEntry
from sshd_setup.remote import apply_script, rollback_script
from sshd_setup.remote.protocol import ApplyOutcome, FactsError, parse_apply_output, reached_end
from sshd_setup.report import FileReport, HostResult, Status
from sshd_setup.sockets import Dial
from sshd_setup.transport import CommandResult, ConnectOptions, Shell, Transport, Transports, Unreachable, connect

if TYPE_CHECKING:
    from sshd_setup.core.plan import Plan

GUARD_SECONDS = 5.0
RELOAD_SEEN = {"pidfile": " (the new sshd wrote its pid file)", "active": " (the init system says it is up)"}


@dataclass(frozen=True)
class RunOptions:
    dry_run: bool = False
    check_only: bool = False
    reload: bool = True
    allow: frozenset[str] = frozenset()
    connect: ConnectOptions = field(default_factory=ConnectOptions)
    transports: Transports | None = field(default=None, compare=False, repr=False)
    """How to reach the host (None: our own SSH connections); e.g. Ansible's connection (sshd_setup/delegated.py)."""
    run_id: str = field(default_factory=new_run_id)
    """This invocation's id: every host's backup name and the owner of every host lock it takes."""


def timestamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def with_host(
    entry: HostEntry, options: RunOptions, dial: Dial | None, work: Callable[[Transport, HostResult], None]
) -> HostResult:
    """Connect, run `work`, and turn every failure into this host's result; always close and time it."""
    started = time.monotonic()
    result = HostResult(entry.name, Status.FAILED, "")
    transport: Transport | None = None

    def connected() -> None:
        nonlocal transport
        transport = _connect(entry, options, dial)
        result.connections = 1
        work(transport, result)

    try:
        _attempt(result, connected)
    finally:
        if transport is not None:
            result.round_trips += transport.round_trips
            transport.close()
        result.seconds = time.monotonic() - started
    return result


def _connect(entry: HostEntry, options: RunOptions, dial: Dial | None = None, *, new_login: bool = False) -> Transport:
    """The host's connection, or (new_login) a NEW login for the lockout guard, never a channel of an old one."""
    if options.transports is None:
        return connect(entry, options.connect, dial)
    if new_login:
        return options.transports.new_login(entry, options.connect)
    return options.transports.session(entry, options.connect)


def _attempt(result: HostResult, work: Callable[[], None]) -> None:
    """Run one step of a host's work; every failure becomes the host's result (one host never stops others)."""
    try:
        work()
    except Unreachable as exc:
        result.status = Status.UNREACHABLE if result.connections == 0 else Status.FAILED
        result.reason = str(exc)
    except FactsError as exc:
        result.status, result.reason = Status.FAILED, f"facts: {exc}"
    except SshdSetupError as exc:  # e.g. an ssh_config paramiko cannot read: already one line
        result.status, result.reason = Status.FAILED, str(exc)
    except Exception as exc:  # one host's surprise must never stop the others
        result.status, result.reason = Status.FAILED, f"internal error: {type(exc).__name__}: {exc}"


Proceed = Callable[[], bool]
"""Asked between a host's assessment and its first write: False stops it there (Ctrl-C), nothing changed."""
INTERRUPTED_BEFORE_CHANGE = "interrupted after its assessment, before any change"


def run_host(
    entry: HostEntry, options: RunOptions, dial: Dial | None = None, proceed: Proceed | None = None
) -> HostResult:
    """dial: this host's first TCP connection, already started by the caller (or None)."""
    return with_host(
        entry, options, dial, lambda transport, result: _pipeline(entry, options, transport, result, proceed)
    )


def _pipeline(
    entry: HostEntry, options: RunOptions, transport: Transport, result: HostResult, proceed: Proceed | None
) -> None:
    shell = transport.shell()  # facts and the apply script go to the same sh: one session, not two
    try:
        assessment = _assess_host(entry, options, transport, shell, result)
        if assessment is None:
            return
        if proceed is not None and not proceed():
            result.status, result.reason = Status.NOT_STARTED, INTERRUPTED_BEFORE_CHANGE
            return
        _apply_assessed(entry, options, transport, shell, result, assessment)
    finally:
        shell.close()


@dataclass
class HeldHost:
    """A host assessed for a confirmed apply: its connection and sh stay open until apply() or release().

    Its facts are read once; a held host whose connection was not kept (keep_open=False) reconnects and
    applies the same assessment (the apply script's own checks make that gap safe).
    """

    entry: HostEntry
    options: RunOptions
    result: HostResult
    assessment: Assessment | None = None
    transport: Transport | None = None
    shell: Shell | None = None

    @property
    def pending(self) -> bool:
        """Assessed, needs a change, not yet applied."""
        return self.assessment is not None

    def apply(self) -> HostResult:
        started = time.monotonic()
        assessment, result = self.assessment, self.result
        if assessment is None:
            return result

        def write() -> None:
            if self.transport is None:  # the same route as the assessment's (e.g. the owner's connection)
                self.transport = _connect(self.entry, self.options)
                result.connections += 1
            if self.shell is None:
                self.shell = self.transport.shell()
            _apply_assessed(self.entry, self.options, self.transport, self.shell, result, assessment)

        try:
            _attempt(result, write)
        finally:
            self.assessment = None
            self._close()
            result.seconds += time.monotonic() - started
        return result

    def release(self, reason: str) -> HostResult:
        """Do not apply: close the connection, report the host not started."""
        if self.assessment is not None:
            self.result.status, self.result.reason = Status.NOT_STARTED, reason
            self.assessment = None
        self._close()
        return self.result

    def _close(self) -> None:
        if self.shell is not None:
            self.shell.close()
            self.shell = None
        if self.transport is not None:
            self.result.round_trips += self.transport.round_trips
            self.transport.close()
            self.transport = None


def hold_host(entry: HostEntry, options: RunOptions, dial: Dial | None = None, keep_open: bool = True) -> HeldHost:
    """Connect and assess (facts, plan, findings); keep the connection when the host needs a change."""
    started = time.monotonic()
    held = HeldHost(entry, options, HostResult(entry.name, Status.FAILED, ""))

    def assess_it() -> None:
        held.transport = _connect(entry, options, dial)
        held.result.connections = 1
        held.shell = held.transport.shell()
        held.assessment = _assess_host(entry, options, held.transport, held.shell, held.result)

    try:
        _attempt(held.result, assess_it)
    finally:
        if not held.pending or not keep_open:
            held._close()
        held.result.seconds = time.monotonic() - started
    if held.assessment is not None:  # shown in the plan as a dry-run would show it
        held.result.status = Status.WOULD_CHANGE
        pending = held.assessment.pending.needs_reload and options.reload
        held.result.reason = "would " + _change_summary(held.assessment.plan, held.assessment.users_to_create, pending)
    return held


def _assess_host(
    entry: HostEntry, options: RunOptions, transport: Transport, shell: Shell, result: HostResult
) -> Assessment | None:
    """Facts (one round trip), plan and findings; the result is final unless an Assessment comes back."""
    login = login_user(entry, transport)
    gathered = shell.run(facts_script(entry.desired, transport.sshd_version, login_user=login))
    if not gathered.ok and not reached_end(gathered.stdout):
        result.reason = _facts_failure(gathered)
        return None
    assessment = assess(entry, gathered.stdout, login)
    plan, findings = assessment.plan, assessment.findings
    result.findings = findings
    from sshd_setup.diffing import unified_diff

    result.files = [FileReport(c.path, c.reason, c.changed, unified_diff(c) if c.changed else "") for c in plan.files]
    blocking = blocking_findings(findings, options.allow)
    if assessment.facts.locked_by:  # another run is between its write and its verified reload: what it wrote
        holder = assessment.facts.locked_by  # would look like a pending foreign change; the lock is the news
        result.status = Status.BLOCKED  # for apply, dry-run and check alike
        result.reason = f"host is locked, nothing written: held by run {holder} (another sshd-setup run is changing it)"
        return None
    if options.check_only:
        result.status = Status.BLOCKED if blocking else Status.CHECKED
        result.reason = _blocked_reason(blocking) if blocking else "no error findings"
        return None
    if blocking:
        result.status, result.reason = Status.BLOCKED, _blocked_reason(blocking)
        return None
    result.users_created = list(assessment.users_to_create)  # dry-run: would be; apply: what the host says
    pending = assessment.pending
    reload_pending = pending.needs_reload and options.reload
    if assessment.is_noop or (not reload_pending and plan.is_noop and not assessment.users_to_create):
        result.status, result.reason = Status.UNCHANGED, plan.noop_reason()
        if pending.needs_reload:
            result.reason += f"; sshd has not loaded {pending.describe()} (--no-reload: not reloaded)"
        return None
    if options.dry_run:
        result.status = Status.WOULD_CHANGE
        result.reason = "would " + _change_summary(plan, assessment.users_to_create, reload_pending)
        return None
    return assessment


def _apply_assessed(
    entry: HostEntry,
    options: RunOptions,
    transport: Transport,
    shell: Shell,
    result: HostResult,
    assessment: Assessment,
) -> None:
    """Write, validate, reload, guard (or roll back): from here on the host runs to a safe end."""
    plan, service = assessment.plan, assessment.service
    result.status = Status.FAILED
    reload_pending = assessment.pending.needs_reload and options.reload  # sshd has not loaded the files
    real = assessment.paths.real  # a symlinked managed file is written through to its target
    script = apply_script(
        run_id=options.run_id,
        keep=entry.desired.backups_keep,
        reload=options.reload,
        service=service,
        main=real(assessment.main),
        directories=plan.directories,
        fix_directories=plan.fix_directories,
        files=[(real(c.path), c.after, script_mode(c.path, assessment)) for c in plan.changes if not c.remove],
        unmapped=tuple(c.path for c in plan.changes if c.remove),
        users=assessment.users_to_create,
        pid_file=assessment.pid_file(assessment.main),
        expected=expected_hashes(plan),
        force_reload=reload_pending,
        require_exec=assessment.helpers(),
    )
    # run, not finish: this shell holds the host's lock until the guard is done (closed by _pipeline)
    applied = shell.run(script)
    outcome = parse_apply_output(applied.stdout)
    result.backup = outcome.backup
    result.users_created = list(outcome.users_created)
    note_lock(result, outcome)
    if lock_refused(result, outcome):
        return
    if outcome.failed:
        _report_failure(result, outcome, applied)
        return
    if not outcome.ended:
        result.reason = f"apply stopped unexpectedly (exit {applied.returncode}): {first_line(applied.stderr)}"
        return
    changed = _change_summary(plan, assessment.users_to_create, reload_pending)
    if not plan.changes and not reload_pending:
        result.status, result.reason = Status.CHANGED, f"{changed}; no file changed, no reload needed"
        return
    if not options.reload:
        result.status, result.reason = Status.CHANGED, f"written and validated, not reloaded (--no-reload): {changed}"
        return
    result.reloaded = True
    guard = lockout_guard(entry, options)
    result.connections += 1
    result.round_trips += 1
    if guard is None:
        seen = RELOAD_SEEN.get(outcome.seen, "")
        result.status, result.reason = Status.CHANGED, f"{changed}; {service.reason}{seen}; new login verified"
        return
    rollback_after_guard(entry, options, transport, service, result, guard, real(assessment.main))


def _report_failure(result: HostResult, outcome: ApplyOutcome, applied: CommandResult) -> None:
    _report_failure_reason(result, outcome, applied)
    made = outcome.kept_creations
    if made:  # never "nothing changed" while something was created
        result.reason = result.reason.replace(", nothing changed", "") + f"; created (kept): {', '.join(made)}"


def _report_failure_reason(result: HostResult, outcome: ApplyOutcome, applied: CommandResult) -> None:
    step, output, rolled_ok = outcome.failed_step, outcome.output, outcome.rollback_ok
    incomplete = restore_problem(outcome)
    if step == "validate" and "(SshdSessionPath/SshdAuthPath)" in output:
        result.reason = f"the assembled tree names a missing sshd helper, nothing changed: {first_line(output)}"
    elif step == "validate":
        result.reason = f"sshd -t refused the assembled tree, nothing changed: {first_line(output)}"
    elif incomplete:
        result.status = Status.FAILED
        result.reason = f"{step} failed ({first_line(output) or 'unit not active'}); {incomplete}"
    elif rolled_ok is not None:
        result.status = Status.ROLLED_BACK if rolled_ok else Status.FAILED
        state = "sshd is up again" if rolled_ok else "sshd is NOT running after the rollback"
        result.reason = f"{step} failed ({first_line(output) or 'unit not active'}); restored {result.backup}: {state}"
    else:
        result.reason = f"{step} failed, nothing changed: {first_line(output) or first_line(applied.stderr)}"


def lockout_guard(entry: HostEntry, options: RunOptions) -> str | None:
    """Log in on a NEW connection with the same credentials and run a shell; None when fine, else why not.

    The apply script has already seen the reloaded sshd write its pid file again (or the init system call
    it up), so this login is served by the new configuration.
    """
    deadline = time.monotonic() + GUARD_SECONDS
    problem = "not tried"
    while time.monotonic() < deadline:
        try:
            fresh = _connect(entry, options, new_login=True)
        except Unreachable as exc:  # sshd refuses connections for a few ms around a reload
            problem = str(exc)
            time.sleep(0.05)
            continue
        try:
            if fresh.probe():
                return None
            problem = "a new login could not run a shell command"
        except Unreachable as exc:
            problem = str(exc)
        finally:
            fresh.close()
        time.sleep(0.1)
    return problem


def rollback_after_guard(
    entry: HostEntry,
    options: RunOptions,
    transport: Transport,
    service: ServicePlan,
    result: HostResult,
    problem: str,
    main: str,
) -> None:
    if result.backup is None:
        result.reason = f"lockout guard failed ({problem}) and no backup name is known"
        return
    script = rollback_script(
        run_id=options.run_id,
        backup=result.backup,
        reload=True,
        service=service,
        main=main,
        save=False,
    )
    try:
        restored = transport.run_script(script)
    except Unreachable as exc:
        result.reason = f"lockout guard failed ({problem}); rollback impossible: {exc}"
        return
    outcome = parse_apply_output(restored.stdout)
    incomplete = restore_problem(outcome)
    if incomplete:
        result.reason = f"lockout guard failed ({problem}); {incomplete}"
        return
    again = lockout_guard(entry, options) if not outcome.failed else "rollback failed"
    result.connections += 1
    if again is None:
        result.status = Status.ROLLED_BACK
        result.reason = f"lockout guard failed ({problem}); restored {result.backup} and sshd answers again"
    else:
        result.reason = f"lockout guard failed ({problem}); rollback of {result.backup} did not help: {again}"


def expected_hashes(plan: Plan) -> dict[str, str | None]:
    """Compare-and-swap: sha256 of every planned file as the facts read it (None: it did not exist)."""
    import hashlib

    return {
        c.path: None if c.before is None else hashlib.sha256(c.before.encode("utf-8", "surrogateescape")).hexdigest()
        for c in plan.files
    }


def note_lock(result: HostResult, outcome: ApplyOutcome) -> None:
    for run in outcome.took_over:
        result.details.append(f"took over the lock left by run {run}, whose process on the host is gone")
    if outcome.cleaned:
        result.details.append(f"removed leftovers of a cut run: {' '.join(outcome.cleaned)}")


def lock_refused(result: HostResult, outcome: ApplyOutcome) -> bool:
    """The host's lock is held by another run, or a file changed since the facts: blocked, nothing written."""
    step, output = outcome.failed_step, outcome.output
    if step == "lock":
        result.status, result.reason = Status.BLOCKED, f"host is locked, nothing written: {first_line(output)}"
    elif step == "cas":
        result.status, result.reason = Status.BLOCKED, f"{first_line(output)}; nothing written (run again)"
    else:
        return False
    return True


def restore_problem(outcome: ApplyOutcome) -> str:
    """'restore incomplete: FILE ...' when a restore could not be proved by hash, else ''."""
    return f"restore incomplete: {outcome.restore_incomplete}" if outcome.restore_incomplete else ""


def _change_summary(plan: Plan, users: tuple[str, ...], reload_pending: bool = False) -> str:
    parts = []
    written = [c for c in plan.changes if not c.remove]
    if written:
        parts.append(f"write {len(written)} file(s)")
    if len(written) < len(plan.changes):
        parts.append(f"remove {len(plan.changes) - len(written)} unmapped principals file(s)")
    if users:
        parts.append(f"create user(s) {', '.join(users)}")
    if plan.fix_directories:
        parts.append(f"set {', '.join(plan.fix_directories)} to root:root 0755")
    if reload_pending and not plan.changes:
        parts.append("reload: the running sshd had not loaded the files on disk")
    return " and ".join(parts)


def _blocked_reason(blocking: list[Finding]) -> str:
    from sshd_setup.core.hostpaths import NEVER_ALLOWED

    first = blocking[0]
    more = f" (+{len(blocking) - 1} more)" if len(blocking) > 1 else ""
    if first.code in NEVER_ALLOWED:
        return f"{first.code}: {first.message}{more}; nothing written"
    return f"{first.code}: {first.message}{more}; allow with --allow {first.code} if intended"


def _facts_failure(gathered: CommandResult) -> str:
    if "incorrect password" in gathered.stderr or "Sorry, try again" in gathered.stderr:
        return "sudo refused the become password (check the password given with --ask-become-pass)"
    if "a password is required" in gathered.stderr:
        return "sudo needs a password on this host: set ansible_become_password or run with --ask-become-pass (-K)"
    return f"facts command failed (exit {gathered.returncode}): {first_line(gathered.stderr)}"


def first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""
