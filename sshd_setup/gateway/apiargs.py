"""The options every gateway API command (ca fetch, gateway targets sync, logs key) shares, declared once.

Imported every time sshd-setup starts: only typer and the standard library at module level; httpx and the
API modules are imported when a command runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from sshd_setup.cliargs import Command, Shared, with_shared

if TYPE_CHECKING:
    from sshd_setup.gateway.client import Retries

# Kept equal to sshd_setup.gateway.api.DEFAULT_API_BASE (a test checks); not imported from there because that
# module pulls in httpx.
DEFAULT_API_BASE = "https://api.cloudflare.com/client/v4"

API_OPTIONS = {
    "account_id": Shared(str, typer.Option(..., "--account-id", help="Cloudflare account ID (32 hex digits).")),
    "api_base": Shared(str, typer.Option(DEFAULT_API_BASE, "--api-base", help="API base URL (tests, proxies).")),
    "token_file": Shared(
        Path | None,
        typer.Option(None, "--token-file", help="Read the API token from this file instead of $CLOUDFLARE_API_TOKEN."),
    ),
    "timeout": Shared(float, typer.Option(30.0, "--timeout", min=0.001, help="Seconds to wait for each answer.")),
    "verbose": Shared(bool, typer.Option(False, "--verbose", "-v", help="Say what is requested (never the token).")),
    "backoff_base": Shared(
        float,
        typer.Option(1.0, "--backoff-base", min=0.0, hidden=True, help="First retry delay in seconds (tests)."),
    ),
}


def say(text: str) -> None:
    """One line to stderr, as sshd-setup's own."""
    typer.echo(f"sshd-setup: {text}", err=True)


@dataclass(frozen=True)
class ApiArgs:
    """Which account, through which API, with which token, how patiently, how talkative."""

    account_id: str
    api_base: str
    token_file: Path | None
    timeout: float
    verbose: bool
    backoff_base: float

    def connect(self) -> tuple[str, str, str]:
        """(checked API base, token, where the token came from): refused before anything is contacted."""
        from sshd_setup.gateway import api

        api.check_account_id(self.account_id)
        base = api.check_api_base(self.api_base)
        token, source = api.load_token(self.token_file, os.environ)
        return base, token, source

    @property
    def log(self) -> Callable[[str], None] | None:
        """Where --verbose says what is requested (never the token)."""
        return say if self.verbose else None

    def retries(self) -> Retries:
        from sshd_setup.gateway.client import Retries

        return Retries(timeout=self.timeout, backoff_base=self.backoff_base)


def api_command(order: str) -> Callable[[Command], Callable[..., None]]:
    """Give a command the API options (order: all its options, in --help order); see sshd_setup.cliargs."""
    return with_shared(ApiArgs, API_OPTIONS, order)
