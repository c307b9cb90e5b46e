"""`sshd-setup logs ...` (placeholder; filled in by the session-log work)."""

import typer

app = typer.Typer(help="Session command logs: key pair, decrypt, replay.", no_args_is_help=True)
