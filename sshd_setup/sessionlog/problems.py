"""Why a capture or a key file cannot be used. The CLI turns these into InputError (exit 2)."""

from __future__ import annotations


class FormatError(ValueError):
    """The capture is not a readable session log: truncated, corrupted, bad metadata or wrong key."""


class KeyFileError(ValueError):
    """A key file that does not hold base64 of a 32-byte X25519 key."""


class WrongKey(FormatError):
    """The first block does not open: the private key is not the capture's (or that block is corrupted)."""
