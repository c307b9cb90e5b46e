"""`sshd-setup ca ...`: the gateway's SSH certificate authority.

This module is imported every time sshd-setup starts: only typer and the standard library at
module level; httpx (via sshd_setup.gateway.api) and the key parser are imported inside commands.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from sshd_setup.atomicfile import write_atomic
from sshd_setup.gateway.apiargs import ApiArgs, api_command, say

if TYPE_CHECKING:
    from sshd_setup.core.sshkeys import PublicKey

app = typer.Typer(
    help="The gateway's SSH certificate authority.",
    no_args_is_help=True,
    epilog="Example: sshd-setup ca fetch --account-id ID --output keys/gateway_ca.pub",
)


@app.command(
    epilog="Example: sshd-setup ca fetch --account-id 0123456789abcdef0123456789abcdef --token-file token -o ca.pub"
)
@api_command("account_id output api_base token_file timeout verbose backoff_base")
def fetch(
    gateway: ApiArgs,
    output: Path | None = typer.Option(
        None,
        "--output",
        "-o",
        help="Add the key to this CA keys file (e.g. the inventory's ca_keys_file), atomically, mode "
        "0644; keys already there are kept. Without it the key line goes to stdout.",
    ),
) -> None:
    """Get the gateway's SSH CA public key from the Cloudflare API, creating the CA if needed.

    Token: $CLOUDFLARE_API_TOKEN or --token-file; needs 'Access: SSH Auditing' (Write creates, Read lists).

    Always prints the key's SHA256 fingerprint (to stderr when the key line goes to stdout).
    """
    from sshd_setup.gateway import api

    base, token, source = gateway.connect()
    if output is not None:
        _read_keys_file(output)  # refuse an unusable --output before contacting anything

    if gateway.verbose:
        say(f"token from {source}; API {base}")
    ca = api.fetch_gateway_ca(
        gateway.account_id,
        token,
        api_base=base,
        timeout=gateway.timeout,
        backoff_base=gateway.backoff_base,
        log=gateway.log,
    )
    origin = "created now" if ca.created else "existing"
    about = f"{ca.key.key_type}, gateway CA {ca.ca_id or '(no id)'}, {origin}"
    if ca.listed > 1:
        say(f"warning: the API lists {ca.listed} gateway CAs; using the first ({ca.ca_id or 'no id'})")

    if output is None:
        typer.echo(ca.key.line())
        say(f"{ca.key.fingerprint} ({about})")
        return
    added, others = _add_key(output, ca.key)
    state = f"written to {output}" if added else f"already in {output}; file unchanged"
    typer.echo(f"{ca.key.fingerprint} ({about}) {state}")
    if others:
        # Keys are never removed (that could lock out another CA's users); say they stay trusted.
        listed = ", ".join(k.fingerprint for k in others)
        typer.echo(f"note: {output} also holds {len(others)} other CA key(s), still trusted: {listed}")


# --------------------------------------------------------------------------------------------
# The keys file: read and validate, then add the key with an atomic replace.


def _target(path: Path) -> Path:
    """The file to replace: a symlink's target, so the link keeps working."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _read_keys_file(path: Path) -> tuple[str, list[PublicKey]]:
    """The file's text and keys ('' and [] when it does not exist); InputError when unusable."""
    from sshd_setup.core.sshkeys import InvalidKey, parse_key_file
    from sshd_setup.errors import InputError
    from sshd_setup.inputfile import MAX_KEY_FILE_BYTES, NotReadable, read_bounded

    target = _target(path)
    where = str(path)
    if target.is_dir():
        raise InputError(where, "--output is a directory; give a file name")
    parent = target.parent
    if not parent.is_dir():
        raise InputError(where, f"directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise InputError(where, f"directory {parent} is not writable")
    try:
        text = read_bounded(target, MAX_KEY_FILE_BYTES).decode("utf-8")
    except FileNotFoundError:
        return "", []
    except NotReadable as exc:
        raise InputError(where, f"the existing file {exc}") from None
    except UnicodeDecodeError:
        raise InputError(where, "existing file is not UTF-8 text; not a CA keys file") from None
    except OSError as exc:
        raise InputError(where, f"cannot read the existing file ({exc.strerror})") from None
    try:
        keys = parse_key_file(text)
    except InvalidKey as exc:
        raise InputError(where, f"existing file is not a valid CA keys file: {exc}") from None
    return text, keys


def _add_key(path: Path, key: PublicKey) -> tuple[bool, list[PublicKey]]:
    """Add ``key`` unless the file holds it already; return (file changed, the file's other keys)."""
    from sshd_setup.errors import SshdSetupError

    text, keys = _read_keys_file(path)  # again: the file may have changed while we waited
    others = [k for k in keys if not key.same_key(k)]
    if len(others) < len(keys):
        return False, others
    if text and not text.endswith("\n"):
        text += "\n"
    try:
        write_atomic(_target(path), text + key.line() + "\n")
    except OSError as exc:
        raise SshdSetupError(f"{path}: cannot write ({exc.strerror or exc})") from None
    return True, others
