"""`sshd-setup logs ...`: the gateway's encrypted SSH session captures.

This module is imported every time sshd-setup starts: only typer and the standard library at module
level; pyhpke, cryptography and rich (via the sessionlog modules) are imported inside the commands.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import typer

from sshd_setup.errors import InputError

app = typer.Typer(
    help="Session command logs: key pair, decrypt to ZIP, replay, show.",
    no_args_is_help=True,
    epilog="Example: sshd-setup logs decrypt -c session.capture -k sshkey --replay",
)

CaptureOption = typer.Option(
    ..., "--capture", "-c", "--input", help="Encrypted session capture downloaded from the gateway (--input: old name)."
)
PrivateKeyOption = typer.Option(..., "--key", "-k", help="Private key file written by `logs keygen`.")


@contextlib.contextmanager
def _input_errors(capture: Path | None = None, key: Path | None = None) -> Iterator[None]:
    """Turn format, key-file and file-system problems into one-line InputErrors (exit 2)."""
    from sshd_setup.sessionlog.problems import FormatError, KeyFileError, WrongKey

    try:
        yield
    except WrongKey as exc:
        hint = f"; {key} looks like a public key file" if key is not None and key.suffix == ".pub" else ""
        raise InputError(str(capture), f"{exc}{hint}") from None
    except FormatError as exc:
        raise InputError(str(capture), str(exc)) from None
    except KeyFileError as exc:
        raise InputError(str(key), str(exc)) from None
    except OSError as exc:
        raise InputError(str(exc.filename or ""), exc.strerror or str(exc)) from None


@app.command(epilog="Example: sshd-setup logs keygen -o sshkey  (then give the gateway sshkey.pub)")
def keygen(
    output: Path = typer.Option(..., "--output", "-o", help="Private key file; the public key goes to OUTPUT.pub."),
    force: bool = typer.Option(False, "--force", help="Replace existing key files."),
) -> None:
    """Create a key pair: OUTPUT (private, mode 0600) and OUTPUT.pub (public).

    Paste OUTPUT.pub's content (also printed on stdout) into the gateway's "SSH encryption public key"
    setting; keep OUTPUT to decrypt captures. Same file format as the vendor's ssh-log-cli.
    """
    from sshd_setup.sessionlog.keys import write_key_pair

    with _input_errors(key=output):
        private, public, content = write_key_pair(output, force=force)
    typer.echo(f"wrote {private} (private, mode 0600) and {public} (public)", err=True)
    typer.echo(content.decode())


@app.command(epilog="Example: sshd-setup logs decrypt -c session.capture -k sshkey -o session.zip")
def decrypt(
    capture: Path = CaptureOption,
    key: Path = PrivateKeyOption,
    output: Path | None = typer.Option(
        None, "--output", "-o", help="ZIP to write (name must end in .zip). Default: INPUT-decrypted.zip."
    ),
    replay: bool = typer.Option(
        False, "--replay", "-r", help="Play a PTY session in this terminal instead of writing a ZIP."
    ),
    speed: float = typer.Option(1.0, "--speed", help="With --replay: play this many times faster."),
    max_delay: float | None = typer.Option(
        None, "--max-delay", help="With --replay: never pause longer than this many seconds."
    ),
) -> None:
    """Decrypt a capture into a ZIP, or --replay it.

    PTY sessions give term_data.txt + term_times.txt (scriptreplay format); other sessions give
    data_from_client.txt + data_from_server.txt. On any error nothing is written.
    """
    from sshd_setup.sessionlog.archive import decrypt_to_zip, default_output
    from sshd_setup.sessionlog.keys import read_key

    if replay:
        if output is not None:
            raise InputError("--output", "cannot be combined with --replay (a replay writes no file)")
        if speed <= 0:
            raise InputError("--speed", f"must be greater than 0, not {speed}")
        if max_delay is not None and max_delay < 0:
            raise InputError("--max-delay", f"must be 0 or more, not {max_delay}")
        with _input_errors(capture, key):
            _replay(capture, read_key(key, "private"), speed, max_delay)
        return
    if speed != 1.0 or max_delay is not None:
        raise InputError("--speed/--max-delay", "only apply with --replay")
    out = default_output(capture) if output is None else output
    if not out.name.endswith(".zip"):
        raise InputError(str(out), "the output name must end in .zip")
    if not out.parent.is_dir():
        raise InputError(str(out), f"directory {out.parent} does not exist")
    with _input_errors(capture, key):
        members = decrypt_to_zip(capture, read_key(key, "private"), out)
    typer.echo(f"wrote {out}: {', '.join(members)}", err=True)


def _replay(capture: Path, private_key: bytes, speed: float, max_delay: float | None) -> None:
    from sshd_setup.sessionlog.capture import CaptureReader
    from sshd_setup.sessionlog.replay import play, replay_steps

    with CaptureReader(capture, private_key) as reader:
        if reader.metadata.pty is None:
            raise InputError(str(capture), "this session has no PTY, so nothing to replay (decrypt it to a ZIP)")
        with contextlib.suppress(BrokenPipeError):  # `... --replay | head` is fine
            play(replay_steps(reader.fragments()), sys.stdout.buffer, speed=speed, max_delay=max_delay)


@app.command(epilog="Example: sshd-setup logs show -c session.capture -k sshkey --json")
def show(
    capture: Path = CaptureOption,
    key: Path = PrivateKeyOption,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Show a capture's session: start, end, terminal, exit status, and traffic (decrypts to count)."""
    import json

    from sshd_setup.sessionlog.capture import CaptureReader
    from sshd_setup.sessionlog.keys import read_key
    from sshd_setup.sessionlog.summary import rows, summarize, to_dict

    with _input_errors(capture, key), CaptureReader(capture, read_key(key, "private")) as reader:
        summary = summarize(reader.metadata, reader.fragments())
    if as_json:
        typer.echo(json.dumps(to_dict(summary), indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Session {capture.name}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for label, value in rows(summary):
        table.add_row(label, value)
    Console().print(table)


@app.command(hidden=True)  # builds test captures; not an operator's command
def encrypt(
    session: Path = typer.Option(
        ...,
        "--session",
        "-s",
        "--input",
        help='Session as JSON: {"started_at", "pty", "exit_data", '
        '"packets": [{"source", "elapsed_us", "text" or "base64"}]}.',
    ),
    key: Path = typer.Option(..., "--key", "-k", help="Public key file (OUTPUT.pub of `logs keygen`)."),
    output: Path = typer.Option(..., "--output", "-o", help="Capture file to write."),
    block_size: int = typer.Option(16384, "--block-size", min=1, max=1 << 24, help="Plaintext bytes per block."),
    force: bool = typer.Option(False, "--force", help="Replace an existing OUTPUT."),
) -> None:
    """Write a capture as the gateway would, from a JSON description (for tests and demos)."""
    import json

    from sshd_setup.sessionlog.files import atomic_file
    from sshd_setup.sessionlog.keys import read_key
    from sshd_setup.sessionlog.sessionspec import spec_from_json, write_spec

    if output.exists() and not force:
        raise InputError(str(output), "already exists (use --force to replace it)")
    if not output.parent.is_dir():
        raise InputError(str(output), f"directory {output.parent} does not exist")
    with _input_errors(session, key):
        try:
            spec = spec_from_json(json.loads(session.read_bytes()))
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, FormatError
            raise InputError(str(session), str(exc).splitlines()[0]) from None
        public_key = read_key(key, "public")
        with atomic_file(output) as f:
            write_spec(spec, f, public_key, block_size)
    typer.echo(f"wrote {output}", err=True)
