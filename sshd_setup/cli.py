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


def main() -> None:
    try:
        app()
    except SshdSetupError as exc:
        print(f"sshd-setup: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("sshd-setup: interrupted", file=sys.stderr)
        sys.exit(exitcodes.HOST_FAILURES)
