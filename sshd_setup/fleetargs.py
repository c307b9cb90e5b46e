"""The options every fleet command (apply, check, rollback, uninstall, verify) shares, declared once.

`fleet_command(order)` gives a command the shared options it names in `order` and calls it with them as one
FleetArgs; the command lists only its own options. Imported every time sshd-setup starts: the commands'
modules are imported when a command runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import typer

from sshd_setup.cliargs import Command, Shared, with_shared

INVENTORIES = typer.Option(
    ...,
    "--inventory",
    "-i",
    help="Ansible inventory: a file (YAML, INI, JSON, executable script) or a directory; repeat to merge, in order.",
)
LIMIT = typer.Option(
    None, "--limit", "-l", help="Ansible host pattern: host, group, glob, a,b, !x, &y, ~regex, web[0:2], @file."
)
FORKS = typer.Option(
    50, "--forks", "-f", help="Hosts worked on at once (50 keeps one controller busy; see README, Scale)."
)
YES = typer.Option(
    False, "--yes", "-y", help="Do not ask for confirmation before changing hosts (needed without a terminal)."
)
SERIAL = typer.Option(None, "--serial", help="Work in batches of N hosts or N% (the first batch is the canary).")
MAX_FAIL = typer.Option(
    None, "--max-fail", help="Stop before the next batch once more than N hosts (or N% of those done) failed."
)
JSON = typer.Option(False, "--json", help="Print the full per-host result as JSON.")
QUIET = typer.Option(False, "--quiet", "-q", help="Print problems (warnings, errors) and the summary only.")
MIN_SEVERITY = typer.Option(
    "info", "--min-severity", help="Show findings of this severity and worse: info, warning, error."
)
ASK_BECOME_PASS = typer.Option(False, "--ask-become-pass", "-K", help="Ask for the sudo password.")
HOST_KEY_CHECKING = typer.Option(
    None,
    "--host-key-checking/--no-host-key-checking",
    help="Check host keys against known_hosts (default on; ANSIBLE_HOST_KEY_CHECKING=False relaxes it).",
)
TIMEOUT = typer.Option(
    10.0, "--timeout", "-T", help="Seconds to wait for a host's TCP connection, SSH banner and login."
)
FLEET = {
    "inventory": Shared(list[Path], INVENTORIES),
    "limit": Shared(str | None, LIMIT),
    "forks": Shared(int, FORKS),
    "yes": Shared(bool, YES),
    "serial": Shared(str | None, SERIAL),
    "max_fail": Shared(str | None, MAX_FAIL),
    "as_json": Shared(bool, JSON),
    "quiet": Shared(bool, QUIET),
    "min_severity": Shared(str, MIN_SEVERITY),
    "ask_become_pass": Shared(bool, ASK_BECOME_PASS),
    "host_key_checking": Shared(bool | None, HOST_KEY_CHECKING),
    "timeout": Shared(float, TIMEOUT),
}


@dataclass(frozen=True)
class FleetArgs:
    """The shared options' values; the last five are not every command's (their defaults: not offered)."""

    inventory: Sequence[Path]
    limit: str | None
    forks: int
    as_json: bool
    ask_become_pass: bool
    host_key_checking: bool | None
    timeout: float
    yes: bool = False
    serial: str | None = None
    max_fail: str | None = None
    quiet: bool = False
    min_severity: str = "info"

    def run(
        self,
        mode: str,
        *,
        allow: Sequence[str] = (),
        reload: bool = False,
        dry_run: bool = False,
        to: str | None = None,
    ) -> int:
        """run_fleet in `mode` (apply / dry-run / check / rollback / rollback-list / uninstall); the exit code."""
        from sshd_setup.commands.fleet import control_options, run_fleet

        control = control_options(
            forks=self.forks,
            serial=self.serial,
            max_fail=self.max_fail,
            yes=self.yes,
            as_json=self.as_json,
            quiet=self.quiet,
            min_severity=self.min_severity,
        )
        return run_fleet(
            inventory=self.inventory,
            limit=self.limit,
            mode=mode,
            dry_run=dry_run,
            allow=list(allow),
            reload=reload,
            ask_become_pass=self.ask_become_pass,
            host_key_checking=self.host_key_checking,
            rollback_to=to,
            control=control,
            timeout=self.timeout,
        )

    def verify(self, allow: Sequence[str]) -> int:
        """The testinfra verification suite over the selected hosts; the exit code."""
        from sshd_setup.commands.verify import run_verify

        return run_verify(
            self.inventory,
            self.limit,
            self.as_json,
            allow=list(allow),
            host_key_checking=self.host_key_checking,
            forks=self.forks,
            timeout=self.timeout,
            ask_become_pass=self.ask_become_pass,
        )


def fleet_command(order: str) -> Callable[[Command], Callable[..., None]]:
    """Give a command the FLEET options named in `order` (all its options, in --help order); see cliargs."""
    return with_shared(FleetArgs, FLEET, order)
