"""The per-host pipeline: facts (1 round trip) → plan + findings (pure) → apply (1) → guard (new connection).

Every step's failure becomes this host's result; nothing here stops or hides another host.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sshd_setup.core.desired import Desired
from sshd_setup.core.facts import HostFacts
from sshd_setup.core.finding import Finding, Severity
from sshd_setup.core.hostpaths import HostPaths, check_host_paths, withhold_refused
from sshd_setup.core.pending import Pending, pending_state
from sshd_setup.core.runs import new_run_id
from sshd_setup.core.service import ServicePlan, service_plan
from sshd_setup.core.tree import SnapshotEntry, SnapshotSource, load_tree
from sshd_setup.errors import SshdSetupError
from sshd_setup.gather import facts_script
from sshd_setup.inventory import HostEntry
from sshd_setup.remote import FileMode, apply_script, rollback_script
from sshd_setup.remote.protocol import ApplyOutcome, FactsError, parse_apply_output, parse_facts_output, reached_end
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


def warm_up() -> None:
    """Import and compile what assess() needs (~40 ms of CPU). Called by the main thread while the workers
    wait for their first SSH handshakes, so that time overlaps with the hosts' work instead of adding to it."""
    from sshd_setup import diffing  # noqa: F401
    from sshd_setup.core import findings  # noqa: F401
    from sshd_setup.templating import environment

    env = environment()
    for name in env.list_templates(extensions=["j2"]):
        env.get_template(name)


def _blocking(findings: list[Finding], allow: frozenset[str]) -> list[Finding]:
    from sshd_setup.core.hostpaths import NEVER_ALLOWED

    allowed = allow - NEVER_ALLOWED
    return [f for f in findings if f.severity is Severity.ERROR and f.code not in allowed]


@dataclass(frozen=True)
class Assessment:
    facts: HostFacts
    plan: Plan
    findings: list[Finding]
    service: ServicePlan
    backups: list[str]
    users_to_create: tuple[str, ...]
    paths: HostPaths = field(default_factory=HostPaths)
    """The managed-path policy on the host: refusals (findings) and symlinks written through."""
    pending: Pending = field(default_factory=lambda: Pending(None))
    """Has the running sshd loaded the files on disk? (a reload is due when not)"""
    main: str = ""
    """The sshd_config this host's sshd reads and sshd-setup manages (the inventory's, or sshd's `-f`)."""

    @property
    def is_noop(self) -> bool:
        return self.plan.is_noop and not self.users_to_create and not self.pending.needs_reload

    def pid_file(self, main: str) -> str:
        """Where sshd writes its pid: the apply script sees the reload's re-exec listening when the new sshd
        writes it again. 'none' for a tree the findings already call broken: the init system's word then."""
        from sshd_setup.core.service import pid_file

        try:
            return pid_file(load_tree(self.facts.source(), main))
        except Exception:
            return "none"

    def helpers(self) -> tuple[str, ...]:
        """SshdSessionPath / SshdAuthPath of the tree as planned: the apply script checks they are executable."""
        from sshd_setup.core.hostchecks import helper_paths

        overlay = dict(self.facts.files)
        overlay.update({c.path: SnapshotEntry(c.after) for c in self.plan.files})
        try:
            tree = load_tree(SnapshotSource(overlay, set(self.facts.dirs)), self.main)
        except Exception:
            return ()
        return tuple(d.line.args[0] for d in helper_paths(tree) if d.line.args[0].startswith("/"))


def _script_mode(path: str, assessment: Assessment) -> FileMode | None:
    """(mode, owner, group) the apply script gives `path` (core.filemodes.final_mode); None: copy the existing's."""
    from sshd_setup.core.filemodes import final_mode

    final = final_mode(path, assessment.plan, assessment.facts)
    return final.for_script() if final is not None else None


def login_user(entry: HostEntry, transport: Transport | None = None) -> str:
    """The user sshd-setup logs in as: the inventory's, else what the SSH client resolved ('' when local)."""
    if entry.is_local:
        return ""
    return entry.user or str(getattr(transport, "login_user", "") or "")


def assess(entry: HostEntry, output: str, login: str = "") -> Assessment:
    """Pure part of a host's run: parse facts, plan, find problems. login: the user sshd-setup logs in as."""
    from sshd_setup.core.findings import find_problems
    from sshd_setup.core.plan import Plan, plan_host
    from sshd_setup.templating import environment

    gathered = parse_facts_output(output)
    facts, backups = gathered.facts, gathered.backup_names
    facts.login_user = login
    desired = _followed_desired(entry.desired, facts)
    paths = check_host_paths(desired, facts)
    if paths.findings:  # nothing is planned, diffed or written where the policy refuses
        withhold_refused(facts, paths)
        refused = Plan(findings=paths.findings)
        service = service_plan(facts)
        return Assessment(facts, refused, list(paths.findings), service, backups, (), main=desired.sshd_config)
    from sshd_setup.core.filemodes import converge_modes

    plan = converge_modes(plan_host(desired, facts.source(), environment()), facts)
    if any(c.remove and c.path in facts.links for c in plan.files):  # never remove a symlink we did not make
        plan = replace(plan, files=tuple(c for c in plan.files if not (c.remove and c.path in facts.links)))
    findings = list(plan.findings)
    seen = {(f.code, f.path, f.line) for f in findings}
    for finding in find_problems(desired, facts, plan):
        if (finding.code, finding.path, finding.line) not in seen:
            findings.append(finding)
    missing = tuple(m.user for m in desired.mappings if m.user in facts.users and facts.users[m.user] is None)
    create = tuple(dict.fromkeys(missing)) if desired.create_users else ()
    from sshd_setup.core.service import pid_file

    tree = load_tree(facts.source(), desired.sshd_config)
    pending = pending_state(facts, tree, pid_file(tree)) if facts.complete else Pending(None)
    return Assessment(
        facts, plan, findings, service_plan(facts), backups, create, paths, pending=pending, main=desired.sshd_config
    )


def _followed_desired(desired: Desired, facts: HostFacts) -> Desired:
    """sshd started with `-f OTHER` reads OTHER: manage that file, unless the inventory names one itself."""
    from sshd_setup.core.desired import DEFAULT_SSHD_CONFIG
    from sshd_setup.core.startopts import running_options

    options = running_options(facts) if facts.complete else None
    if options is None or not options.config or desired.sshd_config != DEFAULT_SSHD_CONFIG:
        return desired
    if options.config != facts.start_main:  # not gathered (the facts script followed another -f)
        return desired
    return dataclasses.replace(desired, sshd_config=options.config)


def _with_host(
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
    return _with_host(
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
    blocking = _blocking(findings, options.allow)
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
        files=[(real(c.path), c.after, _script_mode(c.path, assessment)) for c in plan.changes if not c.remove],
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
        result.reason = f"apply stopped unexpectedly (exit {applied.returncode}): {_first_line(applied.stderr)}"
        return
    changed = _change_summary(plan, assessment.users_to_create, reload_pending)
    if not plan.changes and not reload_pending:
        result.status, result.reason = Status.CHANGED, f"{changed}; no file changed, no reload needed"
        return
    if not options.reload:
        result.status, result.reason = Status.CHANGED, f"written and validated, not reloaded (--no-reload): {changed}"
        return
    result.reloaded = True
    guard = _lockout_guard(entry, options)
    result.connections += 1
    result.round_trips += 1
    if guard is None:
        seen = RELOAD_SEEN.get(outcome.seen, "")
        result.status, result.reason = Status.CHANGED, f"{changed}; {service.reason}{seen}; new login verified"
        return
    _rollback_after_guard(entry, options, transport, service, result, guard, real(assessment.main))


def _report_failure(result: HostResult, outcome: ApplyOutcome, applied: CommandResult) -> None:
    _report_failure_reason(result, outcome, applied)
    made = outcome.kept_creations
    if made:  # never "nothing changed" while something was created
        result.reason = result.reason.replace(", nothing changed", "") + f"; created (kept): {', '.join(made)}"


def _report_failure_reason(result: HostResult, outcome: ApplyOutcome, applied: CommandResult) -> None:
    step, output, rolled_ok = outcome.failed_step, outcome.output, outcome.rollback_ok
    incomplete = restore_problem(outcome)
    if step == "validate" and "(SshdSessionPath/SshdAuthPath)" in output:
        result.reason = f"the assembled tree names a missing sshd helper, nothing changed: {_first_line(output)}"
    elif step == "validate":
        result.reason = f"sshd -t refused the assembled tree, nothing changed: {_first_line(output)}"
    elif incomplete:
        result.status = Status.FAILED
        result.reason = f"{step} failed ({_first_line(output) or 'unit not active'}); {incomplete}"
    elif rolled_ok is not None:
        result.status = Status.ROLLED_BACK if rolled_ok else Status.FAILED
        state = "sshd is up again" if rolled_ok else "sshd is NOT running after the rollback"
        result.reason = f"{step} failed ({_first_line(output) or 'unit not active'}); restored {result.backup}: {state}"
    else:
        result.reason = f"{step} failed, nothing changed: {_first_line(output) or _first_line(applied.stderr)}"


def _lockout_guard(entry: HostEntry, options: RunOptions) -> str | None:
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


def _rollback_after_guard(
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
    again = _lockout_guard(entry, options) if not outcome.failed else "rollback failed"
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
        result.status, result.reason = Status.BLOCKED, f"host is locked, nothing written: {_first_line(output)}"
    elif step == "cas":
        result.status, result.reason = Status.BLOCKED, f"{_first_line(output)}; nothing written (run again)"
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
    return f"facts command failed (exit {gathered.returncode}): {_first_line(gathered.stderr)}"


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""
