"""The `sshd-setup` command line. Heavy imports happen inside commands, so `--help` starts fast."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from sshd_setup import exitcodes
from sshd_setup.errors import SshdSetupError
from sshd_setup.gateway.cli import app as ca_app
from sshd_setup.sessionlog.cli import app as logs_app

app = typer.Typer(
    name="sshd-setup",
    help="Make OpenSSH servers trust a gateway's SSH certificate authority: plan, check, apply, verify.",
    no_args_is_help=True,
    add_completion=False,
    # Never print locals in tracebacks: they may hold API tokens or key material.
    pretty_exceptions_enable=False,
)
app.add_typer(ca_app, name="ca")
app.add_typer(logs_app, name="logs")

InventoryOption = typer.Option(..., "--inventory", "-i", help="Ansible-style inventory (YAML or INI).")


@app.command()
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


@app.command()
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


LimitOption = typer.Option(None, "--limit", "-l", help="Ansible host pattern: host, group, glob, a,b, !x, &y.")
ForksOption = typer.Option(
    50, "--forks", "-f", help="Hosts worked on at once (50 keeps one controller busy; see README, Scale)."
)
JsonOption = typer.Option(False, "--json", help="Print the full per-host result as JSON.")
BecomeOption = typer.Option(False, "--ask-become-pass", "-K", help="Ask for the sudo password.")
YesOption = typer.Option(
    False, "--yes", "-y", help="Do not ask for confirmation before changing hosts (needed without a terminal)."
)
HostKeyOption = typer.Option(
    None,
    "--host-key-checking/--no-host-key-checking",
    help="Check host keys against known_hosts (default on; ANSIBLE_HOST_KEY_CHECKING=False relaxes it).",
)


@app.command()
def apply(
    inventory: Path = InventoryOption,
    limit: str | None = LimitOption,
    dry_run: bool = typer.Option(False, "--dry-run", "--check-mode", help="Show findings and diffs; change nothing."),
    forks: int = ForksOption,
    allow: list[str] = typer.Option([], "--allow", help="Let a host with this error finding code proceed."),
    no_reload: bool = typer.Option(False, "--no-reload", help="Write and validate only; do not reload sshd."),
    yes: bool = YesOption,
    as_json: bool = JsonOption,
    ask_become_pass: bool = BecomeOption,
    host_key_checking: bool | None = HostKeyOption,
) -> None:
    """Converge every host: findings, validate the assembled tree, back up, write atomically, reload, verify."""
    from sshd_setup.commands.fleet import run_fleet

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
        )
    )


@app.command()
def check(
    inventory: Path = InventoryOption,
    limit: str | None = LimitOption,
    forks: int = ForksOption,
    allow: list[str] = typer.Option([], "--allow", help="Do not count this error finding code."),
    as_json: bool = JsonOption,
    ask_become_pass: bool = BecomeOption,
    host_key_checking: bool | None = HostKeyOption,
) -> None:
    """Read-only: gather facts and report findings for every host."""
    from sshd_setup.commands.fleet import run_fleet

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
        )
    )


@app.command()
def rollback(
    inventory: Path = InventoryOption,
    limit: str | None = LimitOption,
    to: str | None = typer.Option(None, "--to", help="Backup timestamp to restore (default: the latest)."),
    forks: int = ForksOption,
    no_reload: bool = typer.Option(False, "--no-reload", help="Restore files only; do not reload sshd."),
    yes: bool = YesOption,
    as_json: bool = JsonOption,
    ask_become_pass: bool = BecomeOption,
    host_key_checking: bool | None = HostKeyOption,
) -> None:
    """Restore a backup taken by apply: validated, reloaded, guarded by a fresh login."""
    from sshd_setup.commands.fleet import run_fleet

    raise typer.Exit(
        run_fleet(
            inventory=inventory,
            limit=limit,
            mode="rollback",
            forks=forks,
            allow=[],
            reload=not no_reload,
            as_json=as_json,
            ask_become_pass=ask_become_pass,
            host_key_checking=host_key_checking,
            rollback_to=to,
        )
    )


@app.command()
def verify(
    inventory: Path = InventoryOption,
    limit: str | None = LimitOption,
    as_json: bool = JsonOption,
    allow: list[str] = typer.Option([], "--allow", help="Do not count this error finding code (as for check)."),
    host_key_checking: bool | None = HostKeyOption,
) -> None:
    """Prove every host matches the inventory: the testinfra verification suite, read-only."""
    from sshd_setup.commands.verify import run_verify

    raise typer.Exit(run_verify(inventory, limit, as_json, allow=allow, host_key_checking=host_key_checking))


def main() -> None:
    try:
        app()
    except SshdSetupError as exc:
        print(f"sshd-setup: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("sshd-setup: interrupted", file=sys.stderr)
        sys.exit(exitcodes.HOST_FAILURES)
