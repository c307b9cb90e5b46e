"""The `sshd-setup` command line. Heavy imports happen inside commands, so `--help` starts fast."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from sshd_setup import exitcodes
from sshd_setup.errors import SshdSetupError
from sshd_setup.gateway.cli import app as ca_app
from sshd_setup.gateway.infra_cli import gateway_app, key_app
from sshd_setup.sessionlog.cli import app as logs_app

app = typer.Typer(
    name="sshd-setup",
    help="Make OpenSSH servers trust a gateway's SSH certificate authority: plan, check, apply, verify.",
    no_args_is_help=True,
    epilog="Example: sshd-setup check -i inventory.yml, then sshd-setup apply -i inventory.yml --dry-run",
    add_completion=False,
    # Never print locals in tracebacks: they may hold API tokens or key material.
    pretty_exceptions_enable=False,
)
app.add_typer(ca_app, name="ca")
app.add_typer(logs_app, name="logs")
app.add_typer(gateway_app, name="gateway")
logs_app.add_typer(key_app, name="key")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"sshd-setup {version('sshd-setup')}")
        except PackageNotFoundError:
            typer.echo("sshd-setup (not installed: version unknown)")
        raise typer.Exit(0)


@app.callback()
def _options(
    show_version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Make OpenSSH servers trust a gateway's SSH certificate authority: plan, check, apply, verify."""


InventoryOption = typer.Option(..., "--inventory", "-i", help="Ansible inventory: a file or a directory.")
InventoriesOption = typer.Option(
    ...,
    "--inventory",
    "-i",
    help="Ansible inventory: a file (YAML, INI, JSON, executable script) or a directory; repeat to merge, in order.",
)


@app.command(epilog="Example: sshd-setup render -i inventory.yml --host web1 --root ./web1-etc-copy --diff")
def render(
    inventory: Path = InventoryOption,
    host: str = typer.Option(..., "--host", help="Inventory host whose desired state to plan."),
    root: Path = typer.Option(..., "--root", help="Directory standing for the host's '/'."),
    diff: bool = typer.Option(False, "--diff", help="Print a unified diff instead of the files."),
    out: Path | None = typer.Option(None, "--out", help="Write the planned files under OUT, same layout."),
) -> None:
    """Plan one host's files offline from a copy of its /etc/ssh tree; print, diff or write them."""
    from sshd_setup.commands.render import run_render

    raise typer.Exit(run_render(inventory=inventory, host=host, root=root, diff=diff, out=out))


@app.command(
    epilog="Example: sshd-setup lint --root ./copy-of-a-host  (or: sshd-setup lint -i inventory.yml --host web1)"
)
def lint(
    path: str | None = typer.Argument(
        None, help="Main sshd_config to check (default /etc/ssh/sshd_config; with --root, a path inside ROOT)."
    ),
    root: Path | None = typer.Option(None, "--root", help="Directory standing for the host's '/'."),
    json_output: bool = typer.Option(False, "--json", help="Print the findings as JSON (schema 1)."),
    inventory: Path | None = typer.Option(
        None, "--inventory", "-i", help="Also check this inventory host's desired state (with --host)."
    ),
    host: str | None = typer.Option(None, "--host", help="Inventory host whose desired state to check."),
) -> None:
    """Pre-flight findings for a local sshd_config tree, offline: exit 0 clean, 1 with errors, 2 bad usage."""
    from sshd_setup.commands.lint import run_lint

    raise typer.Exit(run_lint(path=path, root=root, json_output=json_output, inventory=inventory, host=host))


LimitOption = typer.Option(
    None, "--limit", "-l", help="Ansible host pattern: host, group, glob, a,b, !x, &y, ~regex, web[0:2], @file."
)
ForksOption = typer.Option(
    50, "--forks", "-f", help="Hosts worked on at once (50 keeps one controller busy; see README, Scale)."
)
JsonOption = typer.Option(False, "--json", help="Print the full per-host result as JSON.")
BecomeOption = typer.Option(False, "--ask-become-pass", "-K", help="Ask for the sudo password.")
YesOption = typer.Option(
    False, "--yes", "-y", help="Do not ask for confirmation before changing hosts (needed without a terminal)."
)
SerialOption = typer.Option(None, "--serial", help="Work in batches of N hosts or N% (the first batch is the canary).")
MaxFailOption = typer.Option(
    None, "--max-fail", help="Stop before the next batch once more than N hosts (or N% of those done) failed."
)
QuietOption = typer.Option(False, "--quiet", "-q", help="Print problems (warnings, errors) and the summary only.")
SeverityOption = typer.Option(
    "info", "--min-severity", help="Show findings of this severity and worse: info, warning, error."
)
TimeoutOption = typer.Option(
    10.0, "--timeout", "-T", help="Seconds to wait for a host's TCP connection, SSH banner and login."
)
HostKeyOption = typer.Option(
    None,
    "--host-key-checking/--no-host-key-checking",
    help="Check host keys against known_hosts (default on; ANSIBLE_HOST_KEY_CHECKING=False relaxes it).",
)


@app.command(
    epilog="Example: sshd-setup apply -i inventory.yml --dry-run, then sshd-setup apply -i inventory.yml --serial 2"
)
def apply(
    inventory: list[Path] = InventoriesOption,
    limit: str | None = LimitOption,
    dry_run: bool = typer.Option(False, "--dry-run", "--check-mode", help="Show findings and diffs; change nothing."),
    forks: int = ForksOption,
    allow: list[str] = typer.Option([], "--allow", help="Let a host with this error finding code proceed."),
    no_reload: bool = typer.Option(False, "--no-reload", help="Write and validate only; do not reload sshd."),
    yes: bool = YesOption,
    serial: str | None = SerialOption,
    max_fail: str | None = MaxFailOption,
    as_json: bool = JsonOption,
    quiet: bool = QuietOption,
    min_severity: str = SeverityOption,
    ask_become_pass: bool = BecomeOption,
    host_key_checking: bool | None = HostKeyOption,
    timeout: float = TimeoutOption,
) -> None:
    """Converge every host: plan all, confirm, then validate, back up, write atomically, reload, verify."""
    from sshd_setup.commands.fleet import control_options, run_fleet

    control = control_options(
        forks=forks,
        serial=serial,
        max_fail=max_fail,
        yes=yes or dry_run,
        as_json=as_json,
        quiet=quiet,
        min_severity=min_severity,
    )
    raise typer.Exit(
        run_fleet(
            inventory=inventory,
            limit=limit,
            mode="dry-run" if dry_run else "apply",
            forks=forks,
            allow=allow,
            reload=not no_reload,
            as_json=as_json,
            ask_become_pass=ask_become_pass,
            host_key_checking=host_key_checking,
            control=control,
            timeout=timeout,
        )
    )


@app.command(epilog="Example: sshd-setup check -i inventory.yml -l webservers -q")
def check(
    inventory: list[Path] = InventoriesOption,
    limit: str | None = LimitOption,
    forks: int = ForksOption,
    allow: list[str] = typer.Option([], "--allow", help="Do not count this error finding code."),
    as_json: bool = JsonOption,
    quiet: bool = QuietOption,
    min_severity: str = SeverityOption,
    ask_become_pass: bool = BecomeOption,
    host_key_checking: bool | None = HostKeyOption,
    timeout: float = TimeoutOption,
) -> None:
    """Read-only: gather facts and report findings for every host."""
    from sshd_setup.commands.fleet import control_options, run_fleet

    control = control_options(forks=forks, as_json=as_json, quiet=quiet, min_severity=min_severity)
    raise typer.Exit(
        run_fleet(
            inventory=inventory,
            limit=limit,
            mode="check",
            forks=forks,
            allow=allow,
            reload=False,
            as_json=as_json,
            ask_become_pass=ask_become_pass,
            host_key_checking=host_key_checking,
            control=control,
            timeout=timeout,
        )
    )


@app.command(epilog="Example: sshd-setup rollback -i inventory.yml -l web1 --yes")
def rollback(
    inventory: list[Path] = InventoriesOption,
    limit: str | None = LimitOption,
    to: str | None = typer.Option(
        None, "--to", help="Run id: restore the state before that run (default: before the latest apply)."
    ),
    list_runs: bool = typer.Option(False, "--list", help="List each host's backups (runs) and what each changed."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what the rollback would change; change nothing."),
    forks: int = ForksOption,
    no_reload: bool = typer.Option(False, "--no-reload", help="Restore files only; do not reload sshd."),
    yes: bool = YesOption,
    serial: str | None = SerialOption,
    max_fail: str | None = MaxFailOption,
    as_json: bool = JsonOption,
    quiet: bool = QuietOption,
    ask_become_pass: bool = BecomeOption,
    host_key_checking: bool | None = HostKeyOption,
    timeout: float = TimeoutOption,
) -> None:
    """Restore the state before a run (proved by hash): validated, reloaded, guarded by a fresh login."""
    from sshd_setup.commands.fleet import control_options, run_fleet

    control = control_options(forks=forks, serial=serial, max_fail=max_fail, yes=yes, as_json=as_json, quiet=quiet)
    raise typer.Exit(
        run_fleet(
            inventory=inventory,
            limit=limit,
            mode="rollback-list" if list_runs else "rollback",
            dry_run=dry_run,
            forks=forks,
            allow=[],
            reload=not no_reload,
            as_json=as_json,
            ask_become_pass=ask_become_pass,
            host_key_checking=host_key_checking,
            rollback_to=to,
            control=control,
            timeout=timeout,
        )
    )


@app.command(epilog="Example: sshd-setup uninstall -i inventory.yml -l web1 --dry-run, then --yes")
def uninstall(
    inventory: list[Path] = InventoriesOption,
    limit: str | None = LimitOption,
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what uninstall would change; change nothing."),
    forks: int = ForksOption,
    no_reload: bool = typer.Option(False, "--no-reload", help="Write only; do not reload sshd."),
    yes: bool = YesOption,
    serial: str | None = SerialOption,
    max_fail: str | None = MaxFailOption,
    as_json: bool = JsonOption,
    quiet: bool = QuietOption,
    ask_become_pass: bool = BecomeOption,
    host_key_checking: bool | None = HostKeyOption,
    timeout: float = TimeoutOption,
) -> None:
    """Remove our managed blocks, CA file and principals files (users stay): validated, reloaded, guarded."""
    from sshd_setup.commands.fleet import control_options, run_fleet

    control = control_options(forks=forks, serial=serial, max_fail=max_fail, yes=yes, as_json=as_json, quiet=quiet)
    raise typer.Exit(
        run_fleet(
            inventory=inventory,
            limit=limit,
            mode="uninstall",
            dry_run=dry_run,
            forks=forks,
            allow=[],
            reload=not no_reload,
            as_json=as_json,
            ask_become_pass=ask_become_pass,
            host_key_checking=host_key_checking,
            control=control,
            timeout=timeout,
        )
    )


@app.command(epilog="Example: sshd-setup verify -i inventory.yml --forks 20 --json")
def verify(
    inventory: list[Path] = InventoriesOption,
    limit: str | None = LimitOption,
    forks: int = ForksOption,
    as_json: bool = JsonOption,
    allow: list[str] = typer.Option([], "--allow", help="Do not count this error finding code (as for check)."),
    ask_become_pass: bool = BecomeOption,
    host_key_checking: bool | None = HostKeyOption,
    timeout: float = TimeoutOption,
) -> None:
    """Prove every host matches the inventory: the testinfra verification suite, read-only."""
    from sshd_setup.commands.verify import run_verify

    code = run_verify(
        inventory,
        limit,
        as_json,
        allow=allow,
        host_key_checking=host_key_checking,
        forks=forks,
        timeout=timeout,
        ask_become_pass=ask_become_pass,
    )
    raise typer.Exit(code)


@app.command(
    "inventory",
    epilog="Example: sshd-setup inventory -i inventories/ --graph, or sshd-setup inventory -i inv.yml --host web1",
)
def inventory_command(
    inventory: list[Path] = InventoriesOption,
    list_: bool = typer.Option(False, "--list", help="All groups and hosts as ansible-inventory --list (default)."),
    host: str | None = typer.Option(None, "--host", help="One host's variables, as ansible-inventory --host."),
    graph: bool = typer.Option(False, "--graph", help="The group tree, as ansible-inventory --graph."),
    group: str | None = typer.Argument(None, help="With --graph: the group to start at (default all)."),
    limit: str | None = LimitOption,
) -> None:
    """Show the inventory exactly as apply reads it (ansible-inventory's JSON shape; `sshd_setup` merged as we do)."""
    from sshd_setup.commands.inventory import run_inventory
    from sshd_setup.errors import InputError

    if sum((list_, host is not None, graph)) > 1:
        raise InputError("--list/--host/--graph", "give only one of them")
    if group is not None and not graph:
        raise InputError(group, "a group argument goes with --graph only")
    raise typer.Exit(run_inventory(inventory=inventory, limit=limit, host=host, graph=graph, group=group))


def main() -> None:
    try:
        app()
    except SshdSetupError as exc:
        print(f"sshd-setup: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:  # outside a fleet run's own handling (which prints its summary)
        print("sshd-setup: interrupted", file=sys.stderr)
        sys.exit(exitcodes.exit_code(interrupted=True))
