"""HPKE as the gateway uses it (RFC 9180): DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305.

Mode Base, one context per capture: the receiver opens every block in order (sequence 0, 1, ...).
All primitives come from pyhpke / cryptography; this module only fixes the suite and the key format.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from pyhpke import AEADId, CipherSuite, ContextInterface, KDFId, KEMId, KEMKey, KEMKeyPair, OpenError

KEY_SIZE = 32  # raw X25519 private and public keys, and the encapsulated key "enc"
TAG_SIZE = 16  # ChaCha20-Poly1305 tag: every block is at least this long

_SUITE = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.CHACHA20_POLY1305)


class OpenFailed(Exception):
    """A ciphertext did not authenticate: wrong key, wrong position or corrupted bytes."""


def generate_key_pair() -> tuple[bytes, bytes]:
    """A fresh (private, public) pair of raw 32-byte X25519 keys."""
    private = X25519PrivateKey.generate()
    raw_private = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return raw_private, public_key_of(raw_private)


def public_key_of(private_key: bytes) -> bytes:
    public = X25519PrivateKey.from_private_bytes(private_key).public_key()
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


class Opener:
    """Receiver context: open() the ciphertexts of one capture in the order they were sealed."""

    def __init__(self, private_key: bytes, enc: bytes, info: bytes = b"") -> None:
        skr = KEMKey.from_pyca_cryptography_key(X25519PrivateKey.from_private_bytes(private_key))
        # Raises ValueError for an enc that gives an all-zero shared secret (a low-order point).
        self._ctx: ContextInterface = _SUITE.create_recipient_context(enc, skr, info=info)

    def open(self, ciphertext: bytes, aad: bytes = b"") -> bytes:
        try:
            return bytes(self._ctx.open(ciphertext, aad=aad))
        except OpenError:
            raise OpenFailed from None


class Sealer:
    """Sender context (the gateway's side): .enc goes into the metadata, seal() makes the blocks.

    ephemeral_private fixes the ephemeral key; only known-answer tests (RFC 9180 vectors) need it.
    """

    def __init__(self, public_key: bytes, info: bytes = b"", ephemeral_private: bytes | None = None) -> None:
        pkr = KEMKey.from_pyca_cryptography_key(X25519PublicKey.from_public_bytes(public_key))
        eks = None
        if ephemeral_private is not None:
            sk = X25519PrivateKey.from_private_bytes(ephemeral_private)
            eks = KEMKeyPair(KEMKey.from_pyca_cryptography_key(sk), KEMKey.from_pyca_cryptography_key(sk.public_key()))
        enc, self._ctx = _SUITE.create_sender_context(pkr, info=info, eks=eks)
        self.enc: bytes = bytes(enc)

    def seal(self, plaintext: bytes, aad: bytes = b"") -> bytes:
        return bytes(self._ctx.seal(plaintext, aad=aad))
