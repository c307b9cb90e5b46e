"""Why a capture or a key file cannot be used. The CLI turns these into InputError (exit 2)."""

from __future__ import annotations


class FormatError(ValueError):
    """The capture is not a readable session log: truncated, corrupted, bad metadata or wrong key."""


class KeyFileError(ValueError):
    """A key file that does not hold base64 of a 32-byte X25519 key."""
