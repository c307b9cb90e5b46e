"""SSH public keys as they appear in a TrustedUserCAKeys file: parse, validate, fingerprint."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from dataclasses import dataclass

# Key types sshd accepts as a CA key, with the expected inner structure.
_ECDSA_CURVES = {
    "ecdsa-sha2-nistp256": ("nistp256", 65),
    "ecdsa-sha2-nistp384": ("nistp384", 97),
    "ecdsa-sha2-nistp521": ("nistp521", 133),
}
KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    *_ECDSA_CURVES,
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
_COMMENT_OK = re.compile(r"^[\x20-\x7e]*$")


class InvalidKey(ValueError):
    """A line that is not a usable SSH public key; the message says why."""


@dataclass(frozen=True)
class PublicKey:
    key_type: str
    blob: bytes
    comment: str

    @property
    def base64(self) -> str:
        return base64.b64encode(self.blob).decode("ascii")

    @property
    def fingerprint(self) -> str:
        """The SHA256 fingerprint as ssh-keygen -l prints it."""
        digest = hashlib.sha256(self.blob).digest()
        return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")

    def line(self) -> str:
        return f"{self.key_type} {self.base64}" + (f" {self.comment}" if self.comment else "")

    def same_key(self, other: PublicKey) -> bool:
        return self.key_type == other.key_type and self.blob == other.blob


def _read_string(blob: bytes, offset: int) -> tuple[bytes, int]:
    if offset + 4 > len(blob):
        raise InvalidKey("key data is truncated")
    (length,) = struct.unpack(">I", blob[offset : offset + 4])
    end = offset + 4 + length
    if end > len(blob):
        raise InvalidKey("key data is truncated")
    return blob[offset + 4 : end], end


def _check_structure(key_type: str, blob: bytes) -> None:
    inner_type, offset = _read_string(blob, 0)
    if inner_type.decode("ascii", "replace") != key_type:
        raise InvalidKey(f"key data says {inner_type.decode('ascii', 'replace')!r}, line says {key_type!r}")
    fields: list[bytes] = []
    while offset < len(blob):
        field, offset = _read_string(blob, offset)
        fields.append(field)
    if key_type in ("ssh-ed25519", "sk-ssh-ed25519@openssh.com"):
        want = 1 if key_type == "ssh-ed25519" else 2
        if len(fields) != want or len(fields[0]) != 32:
            raise InvalidKey("an ed25519 key must hold exactly 32 bytes of key material")
    elif key_type == "ssh-rsa":
        if len(fields) != 2:
            raise InvalidKey("an RSA key must hold an exponent and a modulus")
        modulus_bits = int.from_bytes(fields[1], "big").bit_length()
        if modulus_bits < 2048:
            raise InvalidKey(f"RSA key of {modulus_bits} bits is too short (at least 2048)")
    else:
        curve_type = key_type.removeprefix("sk-").removesuffix("@openssh.com")
        curve, point_len = _ECDSA_CURVES[curve_type]
        want = 2 if key_type.startswith("ecdsa") else 3
        if len(fields) != want or fields[0].decode("ascii", "replace") != curve:
            raise InvalidKey(f"ECDSA key does not name curve {curve}")
        if len(fields[1]) != point_len or fields[1][0] != 4:
            raise InvalidKey(f"ECDSA {curve} point must be {point_len} bytes, uncompressed")


def parse_public_key(text: str) -> PublicKey:
    """Parse one `type base64 [comment]` line; raise InvalidKey with a one-line reason."""
    if "\n" in text.strip("\r\n") or "\r" in text.strip("\r\n"):
        raise InvalidKey("a key must be a single line")
    parts = text.strip().split(None, 2)
    if not parts:
        raise InvalidKey("empty key")
    if len(parts) < 2:
        raise InvalidKey("expected '<type> <base64> [comment]'")
    key_type, data = parts[0], parts[1]
    comment = parts[2] if len(parts) == 3 else ""
    if key_type not in KEY_TYPES:
        if key_type.endswith("-cert-v01@openssh.com"):
            raise InvalidKey("this is a certificate, not a CA public key")
        raise InvalidKey(f"unknown key type {key_type!r} (expected one of {', '.join(KEY_TYPES)})")
    try:
        blob = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidKey("key data is not valid base64") from None
    if not _COMMENT_OK.match(comment):
        raise InvalidKey("key comment contains control or non-ASCII characters")
    _check_structure(key_type, blob)
    return PublicKey(key_type=key_type, blob=blob, comment=comment)


def parse_key_file(text: str) -> list[PublicKey]:
    """Parse a TrustedUserCAKeys-style file: one key per line, blank lines and # comments allowed.

    Raises InvalidKey whose message starts with the 1-based line number.
    """
    keys: list[PublicKey] = []
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            keys.append(parse_public_key(stripped))
        except InvalidKey as exc:
            raise InvalidKey(f"line {number}: {exc}") from None
    return keys
