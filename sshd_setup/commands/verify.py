"""`sshd-setup verify`: run the testinfra verification suite (sshd_setup/verification) against the inventory.

pytest runs in this process with the suite's own pytest.ini (the caller's pytest configuration does not
apply) and no terminal output of its own; a collector turns its reports into per-host results
(sshd_setup.report.HostVerification): pass/fail, every failing check with its one-line reason, a summary,
--json. Exit codes from sshd_setup.exitcodes: 0 every check on every host passed, 1 any check failed or a
host was unreachable, 2 bad input.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from sshd_setup.commands.fleet import connect_options
from sshd_setup.core.finding import parse_allow
from sshd_setup.errors import InputError
from sshd_setup.inventory import load_inventory
from sshd_setup.output import print_warnings
from sshd_setup.report import CheckResult, HostVerification, Status, exit_code, verify_json
from sshd_setup.runcontrol import Interrupt
from sshd_setup.sshclient import check_key_files

SUITE_DIR = Path(__file__).resolve().parent.parent / "verification"


class Collector:
    """pytest plugin object: gathers the reports of the suite's checks, per host."""

    def __init__(self, hosts: list[str]) -> None:
        self.checks: dict[str, list[CheckResult]] = {name: [] for name in hosts}
        self.unreachable: dict[str, str] = {}
        self.problems: list[str] = []
        self._seen: dict[tuple[str, str], CheckResult] = {}

    def results(self, interrupted: bool) -> list[HostVerification]:
        """Each host's outcome; after Ctrl-C, a host whose first check never came is not started."""
        return [
            HostVerification.of_checks(host, checks, self.unreachable.get(host), interrupted and not checks)
            for host, checks in self.checks.items()
        ]

    def pytest_runtest_logreport(self, report: Any) -> None:
        props = dict(report.user_properties)
        host = props.get("sshd_setup_host")
        if host is None or host not in self.checks:
            return
        key = (host, props["sshd_setup_check"])
        result = self._seen.get(key)
        if result is None:
            result = CheckResult(
                props["sshd_setup_check"], "passed", description=props.get("sshd_setup_description", "")
            )
            self._seen[key] = result
            self.checks[host].append(result)
        result.seconds += float(getattr(report, "duration", 0.0))
        if "sshd_setup_detail" in props:
            result.detail = str(props["sshd_setup_detail"])
        if report.passed or result.status in ("failed", "error"):
            return
        reason = str(props.get("sshd_setup_reason", ""))
        if report.skipped:
            result.status, result.reason = "skipped", reason
        elif report.when == "call":
            result.status, result.reason = "failed", reason
        else:
            result.status, result.reason = "error", reason
            if reason.startswith("unreachable: "):
                self.unreachable[host] = reason.removeprefix("unreachable: ")

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            text = report.longreprtext.strip().splitlines()
            self.problems.append(f"{report.nodeid or 'collection'}: {text[-1] if text else 'failed'}")

    def pytest_internalerror(self, excrepr: Any) -> None:
        self.problems.append(f"internal error: {str(excrepr).strip().splitlines()[-1]}")


def _require_pytest() -> None:
    try:
        import pytest  # noqa: F401
        import testinfra  # noqa: F401
    except ImportError as exc:
        raise InputError(
            "verify", f"needs pytest and pytest-testinfra ({exc.name} is missing): pip install 'sshd-setup[test]'"
        ) from None


def pytest_args(
    inventory: Path | Sequence[Path],
    limit: str | None,
    allow: list[str],
    host_key_checking: bool | None,
    workers: int = 1,
    timeout: float = 10.0,
) -> list[str]:
    """workers > 1: pytest-xdist processes, each host's checks together on one of them (--dist loadgroup)."""
    parallel = ["-p", "xdist", "-n", str(workers), "--dist", "loadgroup"] if workers > 1 else ["-p", "no:xdist"]
    args = [
        str(SUITE_DIR),
        "-c",
        str(SUITE_DIR / "pytest.ini"),
        "--rootdir",
        str(SUITE_DIR),
        "-p",
        "sshd_setup.verification.plugin",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:terminal",
        *parallel,
        "-p",
        "no:randomly",
    ]
    for source in [inventory] if isinstance(inventory, Path) else inventory:
        args += ["--sshd-setup-inventory", str(source.resolve())]
    if limit:
        args += ["--sshd-setup-limit", limit]
    for code in allow:
        args += ["--sshd-setup-allow", code]
    if host_key_checking is not None:
        args += ["--sshd-setup-host-key-checking", "yes" if host_key_checking else "no"]
    args += ["--sshd-setup-timeout", f"{timeout:g}"]
    return args


def run_verify(
    inventory: Path | Sequence[Path],
    limit: str | None,
    as_json: bool,
    *,
    allow: list[str] | None = None,
    host_key_checking: bool | None = None,
    forks: int = 1,
    timeout: float = 10.0,
    ask_become_pass: bool = False,
) -> int:
    """Verify every selected host against the inventory; print per-host results; return the exit code."""
    inv = load_inventory(inventory)  # bad inventory or --limit: InputError (exit 2) before pytest starts
    hosts = inv.select(limit)
    if forks < 1:
        raise InputError("--forks", "must be at least 1")
    if not 1 <= timeout <= 3600:
        raise InputError("--timeout", f"must be between 1 and 3600 seconds, got {timeout:g}")
    check_key_files(hosts)
    allow = sorted(parse_allow(allow or []))
    _require_pytest()
    import pytest

    from sshd_setup.verification.connection import BECOME_PASSWORD_ENV
    from sshd_setup.verification.plugin import STOP_FILE_ENV

    password = connect_options(ask_become_pass, host_key_checking, timeout).become_password
    if not as_json:
        print_warnings(inv.warnings)
    collector = Collector([h.name for h in hosts])
    started = time.monotonic()
    args = pytest_args(inventory, limit, allow, host_key_checking, _workers(forks, len(hosts)), timeout)
    interrupt = Interrupt(why="each started host's checks run to the end, so that its result is whole")
    # pytest captures file descriptor 2 while checks run: notices go to a copy of the real one
    with tempfile.TemporaryDirectory(prefix="sshd-setup-verify-") as scratch, _stderr_copy() as notices:
        stop_file = Path(scratch) / "stop"

        def pressed() -> None:  # pytest.main holds the main thread: answer Ctrl-C from the handler
            stop_file.touch()
            said = interrupt.notice(None)
            if said:
                print(f"sshd-setup: {said}", file=notices, flush=True)

        interrupt.on_press = pressed
        os.environ[STOP_FILE_ENV] = str(stop_file)
        if password is not None:  # for this run's checks (and xdist workers) only; never in argv
            os.environ[BECOME_PASSWORD_ENV] = password
        try:
            with interrupt.installed():
                pytest_code = int(pytest.main(args, plugins=[collector]))
        finally:
            os.environ.pop(BECOME_PASSWORD_ENV, None)
            os.environ.pop(STOP_FILE_ENV, None)
    seconds = time.monotonic() - started
    results = collector.results(interrupt.stopped)
    if pytest_code not in (0, 1) and not collector.problems and not interrupt.stopped:
        collector.problems.append(f"pytest exited {pytest_code} (usage error or interrupted)")
    if as_json:
        print(json.dumps(verify_json(results, collector.problems, seconds, interrupted=interrupt.stopped), indent=2))
    else:
        print_results(results, collector.problems, seconds)
    return exit_code(results, interrupt.stopped, problems=bool(collector.problems))


@contextlib.contextmanager
def _stderr_copy() -> Iterator[TextIO]:
    with os.fdopen(os.dup(sys.stderr.fileno()), "w") as copy:
        yield copy


HOSTS_PER_WORKER = 3
"""Starting an xdist worker costs about as much as verifying a few hosts in this process."""


def _workers(forks: int, hosts: int) -> int:
    """pytest-xdist workers, up to --forks, a few hosts each; 1 (this process) for small runs or no xdist."""
    wanted = min(forks, math.ceil(hosts / HOSTS_PER_WORKER))
    if wanted <= 1:
        return 1
    import importlib.util

    return wanted if importlib.util.find_spec("xdist") is not None else 1


def print_results(results: list[HostVerification], problems: list[str], seconds: float) -> None:
    """Failing and unreachable hosts one by one with their failing checks; passing hosts grouped; the summary."""
    from rich.console import Console
    from rich.markup import escape

    from sshd_setup.grouping import STATUS_STYLE, View, compress_hosts, summary_lines
    from sshd_setup.output import print_lines

    console = Console(highlight=False)
    console.soft_wrap = not console.is_terminal
    passing: dict[int, list[str]] = {}
    for result in results:
        style = STATUS_STYLE[result.status]
        if result.status is Status.PASSED:
            passing.setdefault(len(result.checks), []).append(result.host)
        elif result.status in (Status.UNREACHABLE, Status.NOT_STARTED):
            word = result.status.upper()
            console.print(f"[{style}]{word}[/{style}] [bold]{escape(result.host)}[/bold]: {escape(result.reason)}")
        else:
            passed = sum(1 for c in result.checks if c.status == "passed")
            console.print(
                f"[{style}]FAIL[/{style}] [bold]{escape(result.host)}[/bold] ({passed}/{len(result.checks)} checks)"
            )
            for check in result.failing:
                console.print(f"  [red]✗ {escape(check.check)}[/red]: {escape(check.reason)}")
    for count, hosts in passing.items():
        console.print(f"[green]PASS[/green] [bold]{escape(compress_hosts(hosts))}[/bold] ({count}/{count} checks)")
    for problem in problems:
        console.print(f"[bold red]error[/bold red]: {escape(problem)}")
    print_lines(summary_lines(results, View("verify", "sshd-setup verify", seconds)))
