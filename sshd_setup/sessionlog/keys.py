"""Key files as the vendor's tool writes them: base64 of the raw 32-byte key, no newline, no header.

`NAME` holds the private key (mode 0600), `NAME.pub` the public key the administrator pastes into the
gateway's settings ("SSH encryption public key").
"""

from __future__ import annotations

import base64
import binascii
import errno
import os
from pathlib import Path

from sshd_setup.sessionlog.crypto import KEY_SIZE, generate_key_pair
from sshd_setup.sessionlog.problems import KeyFileError


def encode_key(raw: bytes) -> bytes:
    return base64.b64encode(raw)


def decode_key(text: bytes, kind: str) -> bytes:
    """Raw key bytes from a key file's content; surrounding whitespace (a pasted newline) is allowed."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except binascii.Error:
        raise KeyFileError(f"not a session-log {kind} key: not base64") from None
    if len(raw) != KEY_SIZE:
        raise KeyFileError(f"not a session-log {kind} key: {len(raw)} bytes, expected {KEY_SIZE} (X25519)")
    return raw


def read_key(path: Path, kind: str) -> bytes:
    """kind is "private" or "public"; a file over 1 KiB is surely something else."""
    try:
        with path.open("rb") as f:
            text = f.read(1025)
    except OSError as exc:
        raise KeyFileError(f"cannot read: {exc.strerror or exc}") from None
    if len(text) > 1024:
        raise KeyFileError(f"not a session-log {kind} key: file is too large")
    return decode_key(text, kind)


def public_path(private_path: Path) -> Path:
    return private_path.with_name(private_path.name + ".pub")


def write_key_pair(private_path: Path, *, force: bool = False) -> tuple[Path, Path, bytes]:
    """Create NAME (0600) and NAME.pub; refuse to replace either unless force. Returns both paths and
    the public key's file content."""
    pub_path = public_path(private_path)
    if not force:
        for path in (private_path, pub_path):
            if path.exists() or path.is_symlink():
                raise FileExistsError(errno.EEXIST, "already exists (use --force to replace it)", str(path))
    private, public = generate_key_pair()
    _write_exclusive(private_path, encode_key(private), 0o600, replace=force)
    try:
        _write_exclusive(pub_path, encode_key(public), 0o644, replace=force)
    except BaseException:
        private_path.unlink(missing_ok=True)  # never leave half a pair
        raise
    return private_path, pub_path, encode_key(public)


def _write_exclusive(path: Path, content: bytes, mode: int, *, replace: bool) -> None:
    if replace:
        path.unlink(missing_ok=True)
    # O_EXCL: created with `mode` from the start (no window with looser permissions), never follows a
    # symlink planted at the name.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)  # the umask must not change the documented modes
            f.write(content)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
