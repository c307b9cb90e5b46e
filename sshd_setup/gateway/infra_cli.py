"""`sshd-setup gateway targets sync` and `sshd-setup logs key upload/show`.

Imported every time sshd-setup starts: only typer, the standard library and light modules of ours at module
level; httpx, the inventory and the gateway modules are imported inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from sshd_setup import exitcodes
from sshd_setup.gateway.apiargs import ApiArgs, api_command

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


@targets_app.command("sync", epilog="Example: sshd-setup gateway targets sync -i inventory.yml --account-id ID --prune")
@api_command("inventory account_id limit dry_run prune as_json state api_base token_file timeout verbose backoff_base")
def targets_sync(
    gateway: ApiArgs,
    inventory: Path = typer.Option(..., "--inventory", "-i", help="Ansible-style inventory (YAML or INI)."),
    limit: str | None = typer.Option(None, "--limit", "-l", help="Ansible host pattern: only these hosts' targets."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the create/update/delete table; send no write."),
    prune: bool = typer.Option(
        False, "--prune", help="Delete targets sshd-setup created whose host left the inventory (never others)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the table as JSON."),
    state: Path | None = typer.Option(
        None, "--state", help="State file of the targets sshd-setup created (default INVENTORY_DIR/.sshd-setup/)."
    ),
) -> int:
    """Create or update one Target per inventory host (hostname = inventory name); --prune deletes ours.

    IP: ansible_host when it is an address, else resolved on this machine. sshd_setup.virtual_network
    names the virtual network (default: the account's default network). A second run sends no write.
    """
    from sshd_setup.commands.targets_sync import SyncOptions, run_sync

    base, token, _ = gateway.connect()
    options = SyncOptions(
        inventory=inventory,
        account_id=gateway.account_id,
        api_base=base,
        token=token,
        limit=limit,
        dry_run=dry_run,
        prune=prune,
        as_json=as_json,
        state=state,
        retries=gateway.retries(),
        log=gateway.log,
    )
    return run_sync(options)


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


def _client(gateway: ApiArgs) -> ApiClient:
    """The audit SSH settings' API client: refused (bad account, base or token) before anything is contacted."""
    from sshd_setup.gateway.client import ApiClient

    base, token, _ = gateway.connect()
    return ApiClient(
        base,
        gateway.account_id,
        token,
        permission="permission to read and edit the Zero Trust gateway's audit SSH settings",
        retries=gateway.retries(),
        log=gateway.log,
    )


@key_app.command("upload", epilog="Example: sshd-setup logs key upload -k sshkey.pub --account-id ID")
@api_command("key account_id api_base token_file timeout verbose backoff_base")
def key_upload(
    gateway: ApiArgs,
    key: Path = typer.Option(..., "--key", "-k", help="Public key file written by `logs keygen` (NAME.pub)."),
) -> int:
    """Make this public key the gateway's SSH command-logging key (both flows); no write when it is already."""
    from sshd_setup.gateway.audit_ssh import get_settings, put_public_key

    public_key = _read_public_key(key)
    with _client(gateway) as api:
        if get_settings(api).public_key == public_key:
            typer.echo(f"the gateway already uses {key}; nothing sent")
            return exitcodes.exit_code()
        settings = put_public_key(api, public_key)
    typer.echo(f"uploaded {key}: the gateway now encrypts command logs to it (updated {settings.updated_at or '?'})")
    return exitcodes.exit_code()


@key_app.command("show", epilog="Example: sshd-setup logs key show --account-id ID -k sshkey.pub")
@api_command("account_id key api_base token_file timeout verbose backoff_base")
def key_show(
    gateway: ApiArgs,
    key: Path | None = typer.Option(None, "--key", "-k", help="Say whether this public key file is the one in force."),
) -> int:
    """Print the command-logging public key in force; with -k, exit 1 unless it is that file's key."""
    from sshd_setup.gateway.audit_ssh import get_settings

    local = _read_public_key(key) if key is not None else None
    with _client(gateway) as api:
        settings = get_settings(api)
    if not settings.public_key:
        typer.echo("no command-logging public key is set at the gateway")
        return exitcodes.exit_code(all_good=key is None)
    typer.echo(settings.public_key)
    if key is None:
        return exitcodes.exit_code()
    matches = settings.public_key == local
    typer.echo(f"matches {key}" if matches else f"does NOT match {key}", err=True)
    return exitcodes.exit_code(all_good=matches)
