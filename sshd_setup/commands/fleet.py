"""`apply`, `check` and `rollback` over the inventory: a bounded pool of hosts, a progress display, a summary."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path

from sshd_setup.apply import RunOptions, rollback_host, run_host, warm_up
from sshd_setup.errors import InputError
from sshd_setup.inventory import HostEntry, load_inventory
from sshd_setup.output import print_findings, print_warnings
from sshd_setup.report import HostResult, Status, exit_code, print_summary, to_json
from sshd_setup.sockets import start_dial
from sshd_setup.sshclient import check_key_files, goes_direct
from sshd_setup.transport import ConnectOptions, host_key_checking_default


def parse_allow(values: list[str]) -> frozenset[str]:
    codes = {code.strip().upper() for value in values for code in value.split(",") if code.strip()}
    for code in codes:
        if not code.replace("-", "").isalnum():
            raise InputError("--allow", f"{code!r} is not a finding code")
    return frozenset(codes)


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
    timeout: float = 10.0,
) -> int:
    inv = load_inventory(inventory)
    hosts = inv.select(limit)
    check_key_files(hosts)
    options = RunOptions(
        dry_run=mode == "dry-run",
        check_only=mode == "check",
        reload=reload,
        allow=parse_allow(allow),
        connect=connect_options(ask_become_pass, host_key_checking, timeout),
    )
    if rollback_to is not None and rollback_to != "latest" and not rollback_to.replace("-", "").isalnum():
        raise InputError("--to", f"{rollback_to!r} is not a backup name")
    if not as_json:
        print_warnings(inv.warnings)

    if forks < 1:
        raise InputError("--forks", "must be at least 1")
    # Everything is checked: put the first hosts' TCP connections on the wire now, all at once.
    # Never for a host reached through a jump host or a proxy command (inventory or ~/.ssh/config).
    direct = [h for h in hosts[:forks] if not h.is_local and goes_direct(h)]
    dials = {h.name: dial for h in direct if (dial := start_dial(h.address, h.port or 22))}

    def work(host: HostEntry) -> HostResult:
        dial = dials.pop(host.name, None)
        if mode == "rollback":
            return rollback_host(host, options, None if rollback_to in (None, "latest") else rollback_to, dial)
        return run_host(host, options, dial)

    show_progress = not as_json and sys.stderr.isatty()
    try:
        results = _run_pool(hosts, forks, work, show_progress, meanwhile=warm_up)
    finally:
        for dial in list(dials.values()):  # only if the pool stopped early (Ctrl-C)
            dial.close()
    if as_json:
        print(json.dumps(to_json(results, mode), indent=2))
    else:
        _print_details(results, mode)
        title = {
            "apply": "sshd-setup apply",
            "dry-run": "sshd-setup apply --dry-run",
            "check": "sshd-setup check",
            "rollback": "sshd-setup rollback",
        }[mode]
        print_summary(results, title)
    return exit_code(results)


def _print_details(results: list[HostResult], mode: str) -> None:
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
        if mode == "dry-run":
            for file in result.files:
                if file.changed:
                    console.print(colour_markup(file.diff))
