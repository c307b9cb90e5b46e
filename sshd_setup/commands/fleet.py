"""`apply`, `check` and `rollback` over the inventory: plan, confirm, batches, Ctrl-C, a grouped summary.

apply without --yes plans every host first (facts, plan, findings: the connection stays open), shows the
grouped plan and asks on the terminal; the confirmed hosts then get the apply script on that same
connection, --serial hosts at a time. With --yes (and for dry-run, check) each host is planned and applied
in one pass. Without a terminal and without --yes, apply and rollback refuse before contacting any host.
"""

from __future__ import annotations

import getpass
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sshd_setup import exitcodes
from sshd_setup.assessment import warm_up
from sshd_setup.core.finding import Severity, parse_allow
from sshd_setup.core.runs import is_run_id, new_run_id
from sshd_setup.errors import InputError
from sshd_setup.grouping import Line, Span, View, change_lines, render, summary_lines
from sshd_setup.inventory import HostEntry, load_inventory
from sshd_setup.output import print_lines, print_warnings
from sshd_setup.pipeline import HeldHost, RunOptions, hold_host, run_host
from sshd_setup.report import GOOD, HostResult, Status, exit_code, to_json
from sshd_setup.runcontrol import Amount, Interrupt, Live, Outcome, parse_amount, run_hosts
from sshd_setup.sockets import Dial, start_dial
from sshd_setup.sshclient import check_key_files, goes_direct
from sshd_setup.transport import ConnectOptions, host_key_checking_default

T = TypeVar("T")
KEEP_OPEN = 256
"""Hosts whose connection stays open between the plan and the confirmed apply; later ones reconnect."""
TITLES = {
    "apply": "sshd-setup apply",
    "dry-run": "sshd-setup apply --dry-run",
    "check": "sshd-setup check",
    "rollback": "sshd-setup rollback",
    "rollback-list": "sshd-setup rollback --list",
    "uninstall": "sshd-setup uninstall",
}
NOT_STARTED = {
    "interrupt": "not started: interrupted (Ctrl-C)",
    "max-fail": "not started: more hosts failed than --max-fail allows",
    "declined": "not started: apply not confirmed",
}


def parse_severity(text: str) -> Severity:
    try:
        return Severity(text.strip().lower())
    except ValueError:
        raise InputError("--min-severity", f"{text!r} is not one of info, warning, error") from None


def connect_options(ask_become_pass: bool, host_key_checking: bool | None, timeout: float = 10.0) -> ConnectOptions:
    password = None
    if ask_become_pass:
        if not sys.stdin.isatty():
            raise InputError("--ask-become-pass", "needs a terminal to ask for the password")
        password = getpass.getpass("BECOME password: ")
    if not 1 <= timeout <= 3600:
        raise InputError("--timeout", f"must be between 1 and 3600 seconds, got {timeout:g}")
    if password is not None and any(c in password for c in "\n\r\0"):
        raise InputError("--ask-become-pass", "the password contains a line break or NUL")
    checking = host_key_checking_default() if host_key_checking is None else host_key_checking
    return ConnectOptions(host_key_checking=checking, become_password=password, connect_timeout=timeout)


@dataclass(frozen=True)
class Control:
    """How a fleet run proceeds and what it prints (the options every fleet command shares)."""

    forks: int = 10
    serial: Amount | None = None
    max_fail: Amount | None = None
    yes: bool = False
    as_json: bool = False
    quiet: bool = False
    min_severity: Severity = Severity.INFO


def control_options(
    *,
    forks: int,
    serial: str | None = None,
    max_fail: str | None = None,
    yes: bool = False,
    as_json: bool = False,
    quiet: bool = False,
    min_severity: str = "info",
) -> Control:
    """Checked before any host is contacted: a bad value is exit 2 with nothing done."""
    if forks < 1:
        raise InputError("--forks", "must be at least 1")
    return Control(
        forks,
        parse_amount("--serial", serial, 1),
        parse_amount("--max-fail", max_fail, 0),
        yes,
        as_json,
        quiet,
        parse_severity(min_severity),
    )


def _failure(result: HostResult) -> str | None:
    return None if result.status in GOOD or result.status is Status.NOT_STARTED else result.reason


def _not_started(name: str, why: str) -> HostResult:
    return HostResult(name, Status.NOT_STARTED, NOT_STARTED[why])


def run_fleet(
    *,
    inventory: Path | Sequence[Path],
    limit: str | None,
    mode: str,
    allow: list[str],
    reload: bool,
    ask_become_pass: bool,
    host_key_checking: bool | None,
    control: Control,
    rollback_to: str | None = None,
    dry_run: bool = False,
    timeout: float = 10.0,
) -> int:
    """mode: apply / dry-run / check / rollback / rollback-list / uninstall (dry_run: rollback and uninstall).
    control: forks, batches, confirmation and output (control_options)."""
    from sshd_setup.hostrestore import list_host, rollback_host, uninstall_host

    inv = load_inventory(inventory)
    hosts = inv.select(limit)
    if rollback_to in ("latest", ""):
        rollback_to = None
    if rollback_to is not None and not is_run_id(rollback_to):
        raise InputError("--to", f"{rollback_to!r} is not a run id (e.g. 20261201T163235Z-3f9a1c)")
    confirm = mode in ("apply", "rollback", "uninstall") and not dry_run and not control.yes
    if confirm and not sys.stdin.isatty():
        raise InputError(
            "--yes", f"{mode} changes hosts: run it on a terminal to confirm, or pass --yes (nothing done)"
        )
    check_key_files(hosts)
    run_id = new_run_id()
    options = RunOptions(
        dry_run=mode == "dry-run" or dry_run,
        check_only=mode == "check",
        reload=reload,
        allow=parse_allow(allow),
        connect=connect_options(ask_become_pass, host_key_checking, timeout),
        run_id=run_id,
    )
    if not control.as_json:
        print_warnings(inv.warnings)
    shown_run = run_id if mode in ("apply", "rollback", "uninstall") and not options.dry_run else ""

    # Everything is checked: put the first hosts' TCP connections on the wire now, all at once.
    # Never for a host reached through a jump host or a proxy command (inventory or ~/.ssh/config).
    direct = [h for h in hosts[: control.forks] if not h.is_local and goes_direct(h)]
    dials = {h.name: dial for h in direct if (dial := start_dial(h.address, h.port or 22))}
    interrupt = Interrupt()
    try:
        with interrupt.installed():
            if rollback_to is not None:  # bad input unless some host has it: ask them all first (read-only)
                listed = _run(
                    hosts,
                    lambda h: list_host(h, options, dials.pop(h.name, None)),
                    control,
                    interrupt,
                    "runs",
                    lambda: None,
                )
                known = sorted({run.name for result in listed.results.values() for run in result.runs})
                if rollback_to not in known:
                    raise InputError(
                        "--to", f"no host has a backup of run {rollback_to}; runs: {', '.join(known) or 'none'}"
                    )
            if confirm and mode != "apply":
                what = (
                    f"Roll back {len(hosts)} host(s) to the state before {rollback_to or 'the latest apply'}?"
                    if mode == "rollback"
                    else f"Uninstall sshd-setup from {len(hosts)} host(s)?"
                )
                with interrupt.suspended():
                    if not _ask(what):
                        declined = [_not_started(h.name, "declined") for h in hosts]
                        return _report(declined, mode, control, 0.0, declined=True)
            if mode == "apply" and confirm:
                return _plan_confirm_apply(hosts, options, control, dials, interrupt)

            def work(host: HostEntry) -> HostResult:
                dial = dials.pop(host.name, None)
                if mode == "rollback":
                    return rollback_host(host, options, rollback_to, dial)
                if mode == "rollback-list":
                    return list_host(host, options, dial)
                if mode == "uninstall":
                    return uninstall_host(host, options, dial)
                return run_host(host, options, dial, proceed=lambda: not interrupt.stopped)

            meanwhile = warm_up if mode in ("apply", "dry-run", "check") else lambda: None
            outcome = _run(hosts, work, control, interrupt, mode, meanwhile)
    finally:
        for dial in list(dials.values()):  # only if hosts were left unstarted
            dial.close()
    results = [outcome.results.get(h.name) or _not_started(h.name, outcome.stopped_by or "interrupt") for h in hosts]
    return _report(
        results,
        mode,
        control,
        outcome.elapsed,
        interrupted=outcome.stopped_by == "interrupt",
        run_id=shown_run,
        dry_run=options.dry_run and mode in ("rollback", "uninstall"),
    )


def _live(label: str, total: int, name: Callable[[T], str], control: Control) -> Live[T]:
    return Live(label, total, name, not control.as_json and sys.stderr.isatty())


def _run(
    items: list[HostEntry],
    work: Callable[[HostEntry], HostResult],
    control: Control,
    interrupt: Interrupt,
    label: str,
    meanwhile: Callable[[], None],
) -> Outcome[HostResult]:
    with _live(label, len(items), _name, control) as live:
        return run_hosts(
            items,
            name=_name,
            work=work,
            failure=_failure,
            forks=control.forks,
            serial=control.serial,
            max_fail=control.max_fail,
            interrupt=interrupt,
            live=live,
            meanwhile=meanwhile,  # overlaps the first handshakes
        )


def _name(host: HostEntry) -> str:
    return host.name


def _plan_confirm_apply(
    hosts: list[HostEntry], options: RunOptions, control: Control, dials: dict[str, Dial], interrupt: Interrupt
) -> int:
    """Phase 1: assess every host, connections kept; show the grouped plan; ask; phase 2: apply in batches."""
    started = time.monotonic()
    index = {h.name: i for i, h in enumerate(hosts)}
    with _live("planning", len(hosts), _name, control) as planning:
        planned = run_hosts(
            hosts,
            name=_name,
            work=lambda h: hold_host(h, options, dials.pop(h.name, None), keep_open=index[h.name] < KEEP_OPEN),
            failure=lambda held: _failure(held.result),
            forks=control.forks,
            interrupt=interrupt,
            live=planning,
            meanwhile=warm_up,
        )
    held = {name: h for name, h in planned.results.items()}
    pending = [held[h.name] for h in hosts if h.name in held and held[h.name].pending]

    def results(why: str) -> list[HostResult]:
        return [held[h.name].release(NOT_STARTED[why]) if h.name in held else _not_started(h.name, why) for h in hosts]

    if planned.stopped_by == "interrupt":
        return _report(results("interrupt"), "apply", control, time.monotonic() - started, interrupted=True)
    plan = [held[h.name].result for h in hosts]
    view = View("dry-run", "plan", time.monotonic() - started, control.quiet, control.min_severity)
    print_lines(render(plan, view), stderr=control.as_json)
    if not pending:
        return _report(results("declined"), "apply", control, time.monotonic() - started, findings=False)
    asked = time.monotonic()
    try:
        with interrupt.suspended():
            confirmed = _ask(f"Apply to {len(pending)} host{'s' if len(pending) != 1 else ''}?")
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return _report(results("interrupt"), "apply", control, asked - started, interrupted=True)
    if not confirmed:
        return _report(results("declined"), "apply", control, asked - started, declined=True)
    started += time.monotonic() - asked  # the elapsed time is the hosts' work, not the operator's reading
    # Batches of the hosts that change (the canary is a real change); the plan's failures were confirmed.
    with _live("apply", len(pending), _held_name, control) as live:
        applied = run_hosts(
            pending,
            name=_held_name,
            work=HeldHost.apply,
            failure=_failure,
            forks=control.forks,
            serial=control.serial,
            max_fail=control.max_fail,
            interrupt=interrupt,
            live=live,
        )
    why = applied.stopped_by or "interrupt"
    # release(): a pending host left unstarted becomes not-started; any other keeps its planned result
    final = [applied.results.get(h.name) or held[h.name].release(NOT_STARTED[why]) for h in hosts]
    return _report(
        final,
        "apply",
        control,
        time.monotonic() - started,
        interrupted=applied.stopped_by == "interrupt",
        findings=False,
    )


def _held_name(held: HeldHost) -> str:
    return held.entry.name


def _ask(question: str) -> bool:
    """y/N on the terminal; end of input is no."""
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    try:
        answer = sys.stdin.readline()
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _report(
    results: list[HostResult],
    mode: str,
    control: Control,
    elapsed: float,
    *,
    interrupted: bool = False,
    declined: bool = False,
    findings: bool = True,
    run_id: str = "",
    dry_run: bool = False,
) -> int:
    if control.as_json:
        data = to_json(results, mode, elapsed=elapsed, interrupted=interrupted, run_id=run_id)
        print(json.dumps(data, indent=2))
    else:
        title = TITLES[mode] + (" --dry-run" if dry_run else "")
        view = View(mode, title, elapsed, control.quiet, control.min_severity, run_id or None)
        if findings:
            lines = render(results, view)
        else:  # the plan showed the findings already
            changes = change_lines(results, dry_run=False) if not control.quiet else []
            lines = changes + summary_lines(results, view)
        print_lines(_host_notes(results, dry_run) + lines)
    if declined:
        print(f"sshd-setup: {mode} not confirmed: nothing changed", file=sys.stderr)
        return exitcodes.exit_code(all_good=False)
    return exit_code(results, interrupted)


def _host_notes(results: list[HostResult], dry_run: bool) -> list[Line]:
    """Per-host lines the grouped view has no place for: lock notes, a host's backups, a rollback's diff."""
    lines: list[Line] = []
    for result in results:
        host = Span(result.host, "bold")
        lines += [(host, Span(f" {note}")) for note in result.details]
        for run in result.runs:
            first = " (the host before sshd-setup)" if run.first else ""
            changed = " ".join(run.changed) or "-"
            lines.append((host, Span(f" {run.name} {run.kind}{first}: {changed}")))
        if dry_run:
            lines += [(Span(text),) for file in result.files if file.changed for text in file.diff.splitlines()]
    return lines
