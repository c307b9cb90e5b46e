"""`sshd-setup ca ...` (placeholder; filled in by the CA-fetch work)."""

import typer

app = typer.Typer(help="The gateway's SSH certificate authority.", no_args_is_help=True)
