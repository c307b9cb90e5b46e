"""Capture files: [4-byte length + base64 JSON metadata] then blocks [4-byte length N + N bytes of
ciphertext] until EOF, all sealed in one HPKE context (sequence numbers 0, 1, ... in file order).

The reader never holds more than one block; the writer (the gateway's side, for tests and
`logs encrypt`) spools blocks to a temporary file because the header, written first, needs the exit
data and the data size that are only known at the end.
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from sshd_setup.sessionlog.crypto import KEY_SIZE, TAG_SIZE, Opener, OpenFailed, Sealer
from sshd_setup.sessionlog.metadata import ExitData, Metadata, Pty, encode_header, parse_metadata
from sshd_setup.sessionlog.packets import Fragment, encode_packet, iter_fragments
from sshd_setup.sessionlog.problems import FormatError, WrongKey

MAX_METADATA = 1 << 20  # real headers are a few hundred bytes
MAX_BLOCK = 64 << 20  # a larger length is corruption; reading it would defeat flat memory
DEFAULT_BLOCK_SIZE = 16 << 10
_LENGTH = struct.Struct(">I")


def read_metadata(f: BinaryIO) -> Metadata:
    """Read the header from the start of f (left positioned at the first block)."""
    prefix = f.read(4)
    if prefix[:2] == b"PK":
        raise FormatError("this is a ZIP file, not a capture (already decrypted?)")
    if len(prefix) < 4:
        raise FormatError("truncated: too short for the metadata length" if prefix else "empty file")
    (length,) = _LENGTH.unpack(prefix)
    if length > MAX_METADATA:
        raise FormatError(f"bad metadata: length {length} is over {MAX_METADATA} bytes (not a capture?)")
    text = f.read(length)
    if len(text) < length:
        raise FormatError(f"truncated: the metadata needs {length} bytes, only {len(text)} follow")
    meta = parse_metadata(text)
    if len(meta.encapsulated_key) != KEY_SIZE:
        raise FormatError(f"bad metadata: encapsulated_key is {len(meta.encapsulated_key)} bytes, expected {KEY_SIZE}")
    return meta


def iter_plaintext(f: BinaryIO, opener: Opener, offset: int) -> Iterator[bytes]:
    """Decrypt the blocks from f's position (file offset `offset`) to EOF, one at a time."""
    index = 0
    while True:
        prefix = f.read(4)
        if not prefix:
            return
        if len(prefix) < 4:
            raise FormatError(f"truncated: block {index} at byte {offset} has {len(prefix)} of 4 length bytes")
        (length,) = _LENGTH.unpack(prefix)
        if length < TAG_SIZE or length > MAX_BLOCK:
            raise FormatError(f"corrupted: block {index} at byte {offset} claims {length} bytes")
        ciphertext = f.read(length)
        if len(ciphertext) < length:
            raise FormatError(
                f"truncated: block {index} at byte {offset} needs {length} bytes, only {len(ciphertext)} follow"
            )
        try:
            yield opener.open(ciphertext)
        except OpenFailed:
            if index == 0:
                raise WrongKey(
                    "cannot decrypt: the private key does not match this capture (or its first block is corrupted)"
                ) from None
            raise FormatError(f"corrupted: block {index} at byte {offset} fails authentication") from None
        index += 1
        offset += 4 + length


class CaptureReader:
    """An open capture: .metadata at once, then .fragments() decrypts as it is iterated (once)."""

    def __init__(self, path: Path, private_key: bytes) -> None:
        self.path = path
        self._file = path.open("rb")
        try:
            self.size = os.fstat(self._file.fileno()).st_size
            self.metadata = read_metadata(self._file)
            try:
                self._opener = Opener(private_key, self.metadata.encapsulated_key)
            except ValueError:
                raise FormatError("bad metadata: encapsulated_key is not a usable X25519 public key") from None
        except BaseException:
            self._file.close()
            raise

    def fragments(self) -> Iterator[Fragment]:
        return iter_fragments(iter_plaintext(self._file, self._opener, self._file.tell()))

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CaptureWriter:
    """Write a capture as the gateway does: packets in, blocks of block_size plaintext bytes out.

    write() takes raw plaintext (tests use it for malformed streams), packet() a well-formed packet,
    flush() ends the current block early, finish() writes header + blocks to `out`.
    """

    def __init__(
        self,
        out: BinaryIO,
        public_key: bytes,
        *,
        started_at: int,
        pty: Pty | None,
        block_size: int = DEFAULT_BLOCK_SIZE,
    ) -> None:
        if not 1 <= block_size <= MAX_BLOCK - TAG_SIZE:
            raise ValueError(f"block size must be 1..{MAX_BLOCK - TAG_SIZE}")
        self._out = out
        self._sealer = Sealer(public_key)
        self._started_at = started_at
        self._pty = pty
        self._block_size = block_size
        self._pending = bytearray()
        self._blocks = tempfile.TemporaryFile()  # noqa: SIM115  # closed by finish() or close()
        self.data_size = 0

    def write(self, plaintext: bytes) -> None:
        self.data_size += len(plaintext)
        self._pending += plaintext
        while len(self._pending) >= self._block_size:
            self._seal(bytes(self._pending[: self._block_size]))
            del self._pending[: self._block_size]  # cheap: bytearray drops a prefix in O(1)

    def packet(self, source: int, elapsed_us: int, data: bytes, code: int = 0) -> None:
        self.write(encode_packet(source, elapsed_us, data, code))

    def flush(self) -> None:
        if self._pending:
            self._seal(bytes(self._pending))
            self._pending.clear()

    def finish(self, exit_data: ExitData | None) -> Metadata:
        self.flush()
        # data_size: the vendor's reader ignores it; we record the plaintext stream's length.
        meta = Metadata(self._started_at, self.data_size, self._sealer.enc, self._pty, exit_data)
        self._out.write(encode_header(meta))
        self._blocks.seek(0)
        shutil.copyfileobj(self._blocks, self._out, 1 << 20)
        self._blocks.close()
        return meta

    def close(self) -> None:
        self._blocks.close()

    def _seal(self, plaintext: bytes) -> None:
        ciphertext = self._sealer.seal(plaintext)
        self._blocks.write(_LENGTH.pack(len(ciphertext)) + ciphertext)
