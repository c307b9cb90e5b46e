"""`apply`, `check` and `rollback` over the inventory: a bounded pool of hosts, a progress display, a summary."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path

from sshd_setup.apply import RunOptions, run_host, warm_up
from sshd_setup.core.runs import is_run_id, new_run_id
from sshd_setup.errors import InputError
from sshd_setup.inventory import HostEntry, load_inventory
from sshd_setup.output import print_findings, print_warnings
from sshd_setup.report import HostResult, Status, exit_code, print_summary, to_json
from sshd_setup.sockets import start_dial
from sshd_setup.transport import ConnectOptions, host_key_checking_default


def parse_allow(values: list[str]) -> frozenset[str]:
    codes = {code.strip().upper() for value in values for code in value.split(",") if code.strip()}
    for code in codes:
        if not code.replace("-", "").isalnum():
            raise InputError("--allow", f"{code!r} is not a finding code")
    return frozenset(codes)


def connect_options(ask_become_pass: bool, host_key_checking: bool | None) -> ConnectOptions:
    password = None
    if ask_become_pass:
        if not sys.stdin.isatty():
            raise InputError("--ask-become-pass", "needs a terminal to ask for the password")
        password = getpass.getpass("BECOME password: ")
    checking = host_key_checking_default() if host_key_checking is None else host_key_checking
    return ConnectOptions(host_key_checking=checking, become_password=password)


def _run_pool(
    hosts: list[HostEntry],
    forks: int,
    work: Callable[[HostEntry], HostResult],
    show_progress: bool,
    meanwhile: Callable[[], None] = lambda: None,
) -> list[HostResult]:
    """Run work on every host, forks at a time; `meanwhile` runs on this thread once all are submitted."""
    results: dict[str, HostResult] = {}
    with ThreadPoolExecutor(max_workers=min(forks, len(hosts))) as pool:
        futures = {pool.submit(work, host): host for host in hosts}
        meanwhile()
        if show_progress:
            _collect_with_progress(futures, results)
        else:
            for future in as_completed(futures):
                results[futures[future].name] = _result(future, futures[future])
    return [results[host.name] for host in hosts]


def _result(future: Future[HostResult], host: HostEntry) -> HostResult:
    try:
        return future.result()
    except Exception as exc:  # run_host catches everything; this is belt and braces
        return HostResult(host.name, Status.FAILED, f"internal error: {exc}")


def _collect_with_progress(futures: dict[Future[HostResult], HostEntry], results: dict[str, HostResult]) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True
    )
    with progress:
        task = progress.add_task("hosts", total=len(futures))
        for future in as_completed(futures):
            results[futures[future].name] = _result(future, futures[future])
            progress.advance(task)


def run_fleet(
    *,
    inventory: Path,
    limit: str | None,
    mode: str,
    forks: int,
    allow: list[str],
    reload: bool,
    as_json: bool,
    ask_become_pass: bool,
    host_key_checking: bool | None,
    rollback_to: str | None = None,
    dry_run: bool = False,
) -> int:
    """mode: apply / dry-run / check / rollback / rollback-list / uninstall (dry_run: rollback and uninstall)."""
    from sshd_setup.hostrestore import list_host, rollback_host, uninstall_host

    inv = load_inventory(inventory)
    hosts = inv.select(limit)
    run_id = new_run_id()
    options = RunOptions(
        dry_run=mode == "dry-run" or dry_run,
        check_only=mode == "check",
        reload=reload,
        allow=parse_allow(allow),
        connect=connect_options(ask_become_pass, host_key_checking),
        run_id=run_id,
    )
    if rollback_to in ("latest", ""):
        rollback_to = None
    if rollback_to is not None and not is_run_id(rollback_to):
        raise InputError("--to", f"{rollback_to!r} is not a run id (e.g. 20261201T163235Z-3f9a1c)")
    if not as_json:
        print_warnings(inv.warnings)

    if forks < 1:
        raise InputError("--forks", "must be at least 1")
    # Everything is checked: put the first hosts' TCP connections on the wire now, all at once.
    dials = {h.name: dial for h in hosts[:forks] if not h.is_local and (dial := start_dial(h.address, h.port or 22))}

    show_progress = not as_json and sys.stderr.isatty()
    if rollback_to is not None:  # bad input unless some host has it: ask them all first (read-only)
        listed = _run_pool(hosts, forks, lambda h: list_host(h, options, dials.pop(h.name, None)), show_progress)
        known = sorted({run.name for result in listed for run in result.runs})
        if rollback_to not in known:
            raise InputError("--to", f"no host has a backup of run {rollback_to}; runs: {', '.join(known) or 'none'}")

    def work(host: HostEntry) -> HostResult:
        dial = dials.pop(host.name, None)
        if mode == "rollback":
            return rollback_host(host, options, rollback_to, dial)
        if mode == "rollback-list":
            return list_host(host, options, dial)
        if mode == "uninstall":
            return uninstall_host(host, options, dial)
        return run_host(host, options, dial)

    try:
        results = _run_pool(hosts, forks, work, show_progress, meanwhile=warm_up)
    finally:
        for dial in list(dials.values()):  # only if the pool stopped early (Ctrl-C)
            dial.close()
    if as_json:
        print(json.dumps(to_json(results, mode, run_id), indent=2))
    else:
        _print_details(results, mode, options.dry_run)
        title = {
            "apply": "sshd-setup apply",
            "dry-run": "sshd-setup apply --dry-run",
            "check": "sshd-setup check",
            "rollback": "sshd-setup rollback",
            "rollback-list": "sshd-setup rollback --list",
            "uninstall": "sshd-setup uninstall",
        }[mode] + (" --dry-run" if dry_run else "")
        print_summary(results, title, run_id if mode in ("apply", "rollback", "uninstall") and not dry_run else "")
    return exit_code(results)


def _print_details(results: list[HostResult], mode: str, dry_run: bool = False) -> None:
    from rich.console import Console
    from rich.markup import escape

    from sshd_setup.diffing import colour_markup
    from sshd_setup.report import Status

    console = Console(highlight=False, soft_wrap=True)
    for result in results:
        print_findings(result.host, result.findings)
        if result.status in (Status.CHANGED, Status.WOULD_CHANGE) and mode != "rollback":
            for line in result.detail_lines():
                console.print(f"[bold]{escape(result.host)}[/bold] {escape(line)}")
        for line in result.details:
            console.print(f"[bold]{escape(result.host)}[/bold] {escape(line)}")
        for run in result.runs:
            first = " (the host before sshd-setup)" if run.first else ""
            changed = " ".join(run.changed) or "-"
            console.print(f"[bold]{escape(result.host)}[/bold] {run.name} {run.kind}{first}: {escape(changed)}")
        if dry_run:
            for file in result.files:
                if file.changed:
                    console.print(colour_markup(file.diff))
