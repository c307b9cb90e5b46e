"""The `sshd-setup` command line. Heavy imports happen inside commands, so `--help` starts fast."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import typer

from sshd_setup import exitcodes
from sshd_setup.errors import SshdSetupError
from sshd_setup.fleetargs import INVENTORIES, LIMIT, FleetArgs, fleet_command
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


@app.command(
    epilog="Example: sshd-setup apply -i inventory.yml --dry-run, then sshd-setup apply -i inventory.yml --serial 2"
)
@fleet_command(
    "inventory limit dry_run forks allow no_reload yes serial max_fail as_json quiet min_severity"
    " ask_become_pass host_key_checking timeout"
)
def apply(
    fleet: FleetArgs,
    dry_run: bool = typer.Option(False, "--dry-run", "--check-mode", help="Show findings and diffs; change nothing."),
    allow: list[str] = typer.Option([], "--allow", help="Let a host with this error finding code proceed."),
    no_reload: bool = typer.Option(False, "--no-reload", help="Write and validate only; do not reload sshd."),
) -> int:
    """Converge every host: plan all, confirm, then validate, back up, write atomically, reload, verify."""
    if dry_run:
        return replace(fleet, yes=True).run("dry-run", allow=allow, reload=not no_reload)
    return fleet.run("apply", allow=allow, reload=not no_reload)


@app.command(epilog="Example: sshd-setup check -i inventory.yml -l webservers -q")
@fleet_command("inventory limit forks allow as_json quiet min_severity ask_become_pass host_key_checking timeout")
def check(
    fleet: FleetArgs,
    allow: list[str] = typer.Option([], "--allow", help="Do not count this error finding code."),
) -> int:
    """Read-only: gather facts and report findings for every host."""
    return fleet.run("check", allow=allow)


@app.command(epilog="Example: sshd-setup rollback -i inventory.yml -l web1 --yes")
@fleet_command(
    "inventory limit to list_runs dry_run forks no_reload yes serial max_fail as_json quiet"
    " ask_become_pass host_key_checking timeout"
)
def rollback(
    fleet: FleetArgs,
    to: str | None = typer.Option(
        None, "--to", help="Run id: restore the state before that run (default: before the latest apply)."
    ),
    list_runs: bool = typer.Option(False, "--list", help="List each host's backups (runs) and what each changed."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what the rollback would change; change nothing."),
    no_reload: bool = typer.Option(False, "--no-reload", help="Restore files only; do not reload sshd."),
) -> int:
    """Restore the state before a run (proved by hash): validated, reloaded, guarded by a fresh login."""
    mode = "rollback-list" if list_runs else "rollback"
    return fleet.run(mode, dry_run=dry_run, reload=not no_reload, to=to)


@app.command(epilog="Example: sshd-setup uninstall -i inventory.yml -l web1 --dry-run, then --yes")
@fleet_command(
    "inventory limit dry_run forks no_reload yes serial max_fail as_json quiet"
    " ask_become_pass host_key_checking timeout"
)
def uninstall(
    fleet: FleetArgs,
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what uninstall would change; change nothing."),
    no_reload: bool = typer.Option(False, "--no-reload", help="Write only; do not reload sshd."),
) -> int:
    """Remove our managed blocks, CA file and principals files (users stay): validated, reloaded, guarded."""
    return fleet.run("uninstall", dry_run=dry_run, reload=not no_reload)


@app.command(epilog="Example: sshd-setup verify -i inventory.yml --forks 20 --json")
@fleet_command("inventory limit forks as_json allow ask_become_pass host_key_checking timeout")
def verify(
    fleet: FleetArgs,
    allow: list[str] = typer.Option([], "--allow", help="Do not count this error finding code (as for check)."),
) -> int:
    """Prove every host matches the inventory: the testinfra verification suite, read-only."""
    return fleet.verify(allow)


@app.command(
    "inventory",
    epilog="Example: sshd-setup inventory -i inventories/ --graph, or sshd-setup inventory -i inv.yml --host web1",
)
def inventory_command(
    inventory: list[Path] = INVENTORIES,
    list_: bool = typer.Option(False, "--list", help="All groups and hosts as ansible-inventory --list (default)."),
    host: str | None = typer.Option(None, "--host", help="One host's variables, as ansible-inventory --host."),
    graph: bool = typer.Option(False, "--graph", help="The group tree, as ansible-inventory --graph."),
    group: str | None = typer.Argument(None, help="With --graph: the group to start at (default all)."),
    limit: str | None = LIMIT,
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
