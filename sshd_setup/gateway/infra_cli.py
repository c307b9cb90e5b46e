"""`sshd-setup gateway targets sync` and `sshd-setup logs key upload/show`.

Imported every time sshd-setup starts: only typer and the standard library at module level; httpx,
the inventory and the gateway modules are imported inside the commands.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from sshd_setup.gateway.client import ApiClient

gateway_app = typer.Typer(
    help="The gateway's side: Access for Infrastructure targets.",
    epilog="Example: sshd-setup gateway targets sync -i inventory.yml --account-id ID --dry-run",
    no_args_is_help=True,
)
targets_app = typer.Typer(
    help="One Access for Infrastructure Target per inventory host.",
    epilog="Example: sshd-setup gateway targets sync -i inventory.yml --account-id ID --dry-run",
    no_args_is_help=True,
)
gateway_app.add_typer(targets_app, name="targets")
key_app = typer.Typer(
    help="The command-logging public key in force at the gateway.",
    epilog="Example: sshd-setup logs key show --account-id ID -k sshkey.pub",
    no_args_is_help=True,
)

_DEFAULT_API_BASE = "https://api.cloudflare.com/client/v4"  # == sshd_setup.gateway.api.DEFAULT_API_BASE

AccountOption = typer.Option(..., "--account-id", help="Cloudflare account ID (32 hex digits).")
ApiBaseOption = typer.Option(_DEFAULT_API_BASE, "--api-base", help="API base URL (tests, proxies).")
TokenFileOption = typer.Option(
    None, "--token-file", help="Read the API token from this file instead of $CLOUDFLARE_API_TOKEN."
)
TimeoutOption = typer.Option(30.0, "--timeout", min=0.001, help="Seconds to wait for each answer.")
VerboseOption = typer.Option(False, "--verbose", "-v", help="Say what is requested (never the token).")
BackoffOption = typer.Option(1.0, "--backoff-base", min=0.0, hidden=True, help="First retry delay in seconds (tests).")


def _err(text: str) -> None:
    typer.echo(f"sshd-setup: {text}", err=True)


def _connect(account_id: str, api_base: str, token_file: Path | None) -> tuple[str, str]:
    """(checked API base, token): refused before anything is contacted."""
    from sshd_setup.gateway import api

    api.check_account_id(account_id)
    base = api.check_api_base(api_base)
    token, _ = api.load_token(token_file, os.environ)
    return base, token


@targets_app.command("sync", epilog="Example: sshd-setup gateway targets sync -i inventory.yml --account-id ID --prune")
def targets_sync(
    inventory: Path = typer.Option(..., "--inventory", "-i", help="Ansible-style inventory (YAML or INI)."),
    account_id: str = AccountOption,
    limit: str | None = typer.Option(None, "--limit", "-l", help="Ansible host pattern: only these hosts' targets."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the create/update/delete table; send no write."),
    prune: bool = typer.Option(
        False, "--prune", help="Delete targets sshd-setup created whose host left the inventory (never others)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the table as JSON."),
    state: Path | None = typer.Option(
        None, "--state", help="State file of the targets sshd-setup created (default INVENTORY_DIR/.sshd-setup/)."
    ),
    api_base: str = ApiBaseOption,
    token_file: Path | None = TokenFileOption,
    timeout: float = TimeoutOption,
    verbose: bool = VerboseOption,
    backoff_base: float = BackoffOption,
) -> None:
    """Create or update one Target per inventory host (hostname = inventory name); --prune deletes ours.

    IP: ansible_host when it is an address, else resolved on this machine. sshd_setup.virtual_network
    names the virtual network (default: the account's default network). A second run sends no write.
    """
    from sshd_setup.commands.targets_sync import SyncOptions, run_sync
    from sshd_setup.gateway.client import Retries

    base, token = _connect(account_id, api_base, token_file)
    options = SyncOptions(
        inventory=inventory,
        account_id=account_id,
        api_base=base,
        token=token,
        limit=limit,
        dry_run=dry_run,
        prune=prune,
        as_json=as_json,
        state=state,
        retries=Retries(timeout=timeout, backoff_base=backoff_base),
        log=_err if verbose else None,
    )
    raise typer.Exit(run_sync(options))


def _read_public_key(path: Path) -> str:
    """The key file's base64 text, validated; refuses what looks like the private half."""
    from sshd_setup.errors import InputError
    from sshd_setup.sessionlog.keys import encode_key, public_path, read_key
    from sshd_setup.sessionlog.problems import KeyFileError

    if path.suffix != ".pub" and public_path(path).exists():
        raise InputError(str(path), f"this looks like the private key; upload {public_path(path)}")
    try:
        return encode_key(read_key(path, "public")).decode()
    except KeyFileError as exc:
        raise InputError(str(path), str(exc)) from None


def _client(account_id: str, base: str, token: str, timeout: float, backoff_base: float, verbose: bool) -> ApiClient:
    from sshd_setup.gateway.client import ApiClient, Retries

    return ApiClient(
        base,
        account_id,
        token,
        permission="permission to read and edit the Zero Trust gateway's audit SSH settings",
        retries=Retries(timeout=timeout, backoff_base=backoff_base),
        log=_err if verbose else None,
    )


@key_app.command("upload", epilog="Example: sshd-setup logs key upload -k sshkey.pub --account-id ID")
def key_upload(
    key: Path = typer.Option(..., "--key", "-k", help="Public key file written by `logs keygen` (NAME.pub)."),
    account_id: str = AccountOption,
    api_base: str = ApiBaseOption,
    token_file: Path | None = TokenFileOption,
    timeout: float = TimeoutOption,
    verbose: bool = VerboseOption,
    backoff_base: float = BackoffOption,
) -> None:
    """Make this public key the gateway's SSH command-logging key (both flows); no write when it is already."""
    from sshd_setup.gateway.audit_ssh import get_settings, put_public_key

    public_key = _read_public_key(key)
    base, token = _connect(account_id, api_base, token_file)
    with _client(account_id, base, token, timeout, backoff_base, verbose) as api:
        if get_settings(api).public_key == public_key:
            typer.echo(f"the gateway already uses {key}; nothing sent")
            return
        settings = put_public_key(api, public_key)
    typer.echo(f"uploaded {key}: the gateway now encrypts command logs to it (updated {settings.updated_at or '?'})")


@key_app.command("show", epilog="Example: sshd-setup logs key show --account-id ID -k sshkey.pub")
def key_show(
    account_id: str = AccountOption,
    key: Path | None = typer.Option(None, "--key", "-k", help="Say whether this public key file is the one in force."),
    api_base: str = ApiBaseOption,
    token_file: Path | None = TokenFileOption,
    timeout: float = TimeoutOption,
    verbose: bool = VerboseOption,
    backoff_base: float = BackoffOption,
) -> None:
    """Print the command-logging public key in force; with -k, exit 1 unless it is that file's key."""
    from sshd_setup import exitcodes
    from sshd_setup.gateway.audit_ssh import get_settings

    local = _read_public_key(key) if key is not None else None
    base, token = _connect(account_id, api_base, token_file)
    with _client(account_id, base, token, timeout, backoff_base, verbose) as api:
        settings = get_settings(api)
    if not settings.public_key:
        typer.echo("no command-logging public key is set at the gateway")
        raise typer.Exit(exitcodes.HOST_FAILURES if key is not None else exitcodes.OK)
    typer.echo(settings.public_key)
    if key is None:
        return
    if settings.public_key == local:
        typer.echo(f"matches {key}", err=True)
        return
    typer.echo(f"does NOT match {key}", err=True)
    raise typer.Exit(exitcodes.HOST_FAILURES)
