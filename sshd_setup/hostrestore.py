"""`rollback` (restore a backup), `rollback --list` and `uninstall` on one host, under the host's lock.

A backup is the complete state before one run (see core/runs.py). A rollback restores one (by default
the state before the latest run that was not itself a rollback, so rolling back twice is not a toggle),
proves the restored files by hash, validates, reloads and guards. Uninstall writes sshd_config without
our blocks and puts every other path back as the first backup (the host before sshd-setup) has it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from sshd_setup.core.facts import HostFacts
from sshd_setup.core.hostpaths import check_host_paths
from sshd_setup.core.plan import FileChange
from sshd_setup.core.runs import BackupEntry, HostBackups, uninstalled_main, without_blocks
from sshd_setup.core.service import service_plan
from sshd_setup.diffing import unified_diff
from sshd_setup.gather import facts_script
from sshd_setup.inventory import HostEntry
from sshd_setup.pipeline import (
    RunOptions,
    first_line,
    lock_refused,
    lockout_guard,
    note_lock,
    restore_problem,
    rollback_after_guard,
    with_host,
)
from sshd_setup.remote import apply_script, rollback_script
from sshd_setup.remote.protocol import parse_apply_output, parse_facts_output
from sshd_setup.report import FileReport, HostResult, Status
from sshd_setup.sockets import Dial
from sshd_setup.transport import Shell, Transport

OURS = ("# Managed by sshd-setup:",)


def _gather(entry: HostEntry, transport: Transport, shell: Shell, send: str) -> tuple[HostFacts, HostBackups]:
    gathered = shell.run(facts_script(entry.desired, transport.sshd_version, send_backup=send))
    output = parse_facts_output(gathered.stdout)
    return output.facts, output.backups


def _current(facts: HostFacts, path: str) -> str | None:
    entry = facts.files.get(path)
    return entry.text if entry is not None else None


def _restore_changes(facts: HostFacts, entries: list[BackupEntry]) -> list[FileChange]:
    """What restoring these manifest entries changes: one FileChange per file that differs."""
    changes = []
    for item in entries:
        if item.kind not in ("existed", "absent"):
            continue
        now = _current(facts, item.path)
        if now == item.text:
            continue
        if item.text is None:
            changes.append(FileChange(item.path, now, "", "remove: it did not exist then"))
        else:
            changes.append(FileChange(item.path, now, item.text, "restore the backed-up content"))
    return changes


def _reports(changes: list[FileChange]) -> list[FileReport]:
    return [FileReport(c.path, c.reason, True, unified_diff(c)) for c in changes]


def list_host(entry: HostEntry, options: RunOptions, dial: Dial | None = None) -> HostResult:
    """`rollback --list`: the runs this host has a backup of, oldest first, with what each changed."""

    def work(transport: Transport, result: HostResult) -> None:
        shell = transport.shell()
        try:
            _, backups = _gather(entry, transport, shell, "")
        finally:
            shell.close()
        result.status, result.runs = Status.CHECKED, backups.runs
        result.reason = f"{len(backups.runs)} backup(s)" if backups.runs else "no backup on this host"

    return with_host(entry, options, dial, work)


def rollback_host(entry: HostEntry, options: RunOptions, to: str | None, dial: Dial | None = None) -> HostResult:
    """Restore the state before run `to` (default: before the latest apply or uninstall)."""
    return _in_shell(entry, options, dial, lambda t, s, r: _rollback(entry, options, t, s, r, to))


def _in_shell(
    entry: HostEntry,
    options: RunOptions,
    dial: Dial | None,
    work: Callable[[Transport, Shell, HostResult], None],
) -> HostResult:
    def run(transport: Transport, result: HostResult) -> None:
        shell = transport.shell()
        try:  # closing the shell (after the guard) releases the host's lock
            work(transport, shell, result)
        finally:
            shell.close()

    return with_host(entry, options, dial, run)


def _rollback(
    entry: HostEntry, options: RunOptions, transport: Transport, shell: Shell, result: HostResult, to: str | None
) -> None:
    facts, backups = _gather(entry, transport, shell, to or "latest")
    latest = backups.latest_change()
    target = to or (latest.name if latest else None)
    if target is None or target not in backups.names:
        here = ", ".join(backups.names) or "none"
        result.status = Status.BLOCKED
        result.reason = f"no backup {to} on this host (backups here: {here})" if to else "no backup on this host"
        return
    result.backup = target
    changes = _restore_changes(facts, backups.entries)
    result.files = _reports(changes)
    dirs = [e.path for e in backups.entries if e.kind == "nodir" and e.path in facts.dirs]
    if not changes and not dirs:
        result.status, result.reason = Status.UNCHANGED, f"already the state before run {target}"
        return
    what = f"{len(changes)} file(s)" + (f" and {len(dirs)} directory(ies)" if dirs else "")
    if options.dry_run:
        result.status, result.reason = Status.WOULD_CHANGE, f"would restore the state before run {target}: {what}"
        return
    script = rollback_script(
        run_id=options.run_id,
        backup=target,
        reload=options.reload,
        service=service_plan(facts),
        main=entry.desired.sshd_config,
        keep=entry.desired.backups_keep,
    )
    outcome = parse_apply_output(shell.run(script).stdout)
    note_lock(result, outcome)
    if lock_refused(result, outcome):
        return
    if outcome.failed:
        result.status = Status.FAILED
        result.reason = f"rollback to {target} refused at {outcome.failed_step}: {first_line(outcome.output)}"
        return
    incomplete = restore_problem(outcome)
    if incomplete:
        result.status, result.reason = Status.FAILED, f"rollback to {target}: {incomplete}"
        return
    done = f"restored the state before run {target} ({what}, proved by hash)"
    _finish(entry, options, transport, facts, result, done)


def _finish(
    entry: HostEntry, options: RunOptions, transport: Transport, facts: HostFacts, result: HostResult, done: str
) -> None:
    """Guard with a new login; when it fails, put back the backup this run took (named after the run)."""
    if options.reload:
        problem = lockout_guard(entry, options)
        result.connections += 1
        result.round_trips += 1
        if problem is not None:
            target, result.backup = result.backup, options.run_id
            main = check_host_paths(entry.desired, facts).real(entry.desired.sshd_config)
            rollback_after_guard(entry, options, transport, service_plan(facts), result, problem, main)
            result.backup = target
            return
    result.status, result.reloaded = Status.CHANGED, options.reload
    result.reason = done + ("; reloaded, new login verified" if options.reload else "; not reloaded (--no-reload)")


def uninstall_host(entry: HostEntry, options: RunOptions, dial: Dial | None = None) -> HostResult:
    """Remove our blocks, CA file and principals files: the host as the first backup has it (users stay)."""
    return _in_shell(entry, options, dial, lambda t, s, r: _uninstall(entry, options, t, s, r))


def _sha(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def _uninstall(entry: HostEntry, options: RunOptions, transport: Transport, shell: Shell, result: HostResult) -> None:
    facts, backups = _gather(entry, transport, shell, "first")
    desired = entry.desired
    main = desired.sshd_config
    current = _current(facts, main)
    if current is None:
        result.status, result.reason = Status.BLOCKED, f"{main} does not exist or cannot be read"
        return
    first = {e.path: e for e in backups.entries} if backups.sent else {}
    try:
        main_after = uninstalled_main(current, first[main].text) if main in first else without_blocks(current)
    except ValueError as exc:
        result.status, result.reason = Status.BLOCKED, f"MANAGED-BLOCK-DAMAGED: {main}: {exc}"
        return
    changes = []
    if main_after is not None and main_after != current:
        changes.append(FileChange(main, current, main_after, "remove the sshd-setup managed blocks"))
    if backups.sent:  # main too when it did not exist before and holds only what we wrote: it goes
        others = [e for e in backups.entries if e.path != main or main_after is None]
    else:  # no first backup: remove only files that carry our header
        paths = [desired.ca_path, *(m.file for m in desired.mappings if m.file)]
        others = [BackupEntry("absent", p) for p in paths if (_current(facts, p) or "").startswith(OURS)]
    changes += _restore_changes(facts, others)
    result.files = _reports(changes)
    dirs = [e.path for e in others if e.kind == "nodir" and e.path in facts.dirs]
    if not changes and not dirs:
        result.status, result.reason = Status.UNCHANGED, "sshd-setup has left nothing on this host"
        return
    what = f"{len(changes)} file(s)" + (f" and {len(dirs)} directory(ies)" if dirs else "")
    if options.dry_run:
        result.status, result.reason = Status.WOULD_CHANGE, f"would uninstall: {what}"
        return
    managed = [main, *(e.path for e in others if e.kind in ("existed", "absent"))]
    script = apply_script(
        run_id=options.run_id,
        keep=desired.backups_keep,
        reload=options.reload,
        service=service_plan(facts),
        main=main,
        directories=(),
        files=[(main, main_after, None)] if main_after is not None and main_after != current else [],
        expected={p: _sha(_current(facts, p)) for p in managed},
        kind="uninstall",
        managed=tuple(managed),
        remove=tuple(e.path for e in others if e.kind == "absent"),
    )
    outcome = parse_apply_output(shell.run(script).stdout)
    result.backup = outcome.backup
    note_lock(result, outcome)
    if lock_refused(result, outcome):
        return
    if outcome.failed:
        incomplete = restore_problem(outcome)
        result.status = Status.ROLLED_BACK if outcome.rollback_ok and not incomplete else Status.FAILED
        result.reason = f"uninstall failed at {outcome.failed_step}: {first_line(outcome.output)}" + (
            f"; {incomplete}" if incomplete else ""
        )
        return
    incomplete = restore_problem(outcome)
    if incomplete:  # installed and reloaded, but a path did not come back as the first backup has it
        result.status, result.reason = Status.FAILED, f"uninstall: {incomplete}"
        return
    _finish(entry, options, transport, facts, result, f"uninstalled ({what}; users kept)")
