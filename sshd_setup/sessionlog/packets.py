"""The packet stream inside a capture's plaintext.

Each packet: total length T (u32 BE, T >= 13), then T bytes: source u8 (0 client, 1 server/origin),
code u32 BE, elapsed microseconds since the session started u64 BE, then T - 13 bytes of data.
Packets ignore block boundaries, so the parser works on a stream of chunks and hands out each packet's
data as fragments: memory stays flat however large a packet is.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sshd_setup.sessionlog.problems import FormatError

CLIENT = 0
SERVER = 1  # "origin" in the vendor's words
SOURCE_NAMES = {CLIENT: "client", SERVER: "server"}

_LENGTH = struct.Struct(">I")
_HEADER = struct.Struct(">IBIQ")  # T, source, code, elapsed µs
_FIXED = _HEADER.size - _LENGTH.size  # 13: the part of T that is not data


@dataclass(frozen=True, slots=True)
class PacketHeader:
    source: int
    code: int
    elapsed_us: int
    size: int  # bytes of data


@dataclass(frozen=True, slots=True)
class Fragment:
    """A piece of one packet's data; first is True for the packet's first piece (maybe empty)."""

    packet: PacketHeader
    data: bytes
    first: bool


def encode_packet(source: int, elapsed_us: int, data: bytes, code: int = 0) -> bytes:
    return _HEADER.pack(_FIXED + len(data), source, code, elapsed_us) + data


def iter_fragments(chunks: Iterable[bytes]) -> Iterator[Fragment]:
    """Parse the plaintext stream given in chunks of any size (decrypted blocks)."""
    carry = b""  # start of a packet header cut by a chunk boundary
    packet: PacketHeader | None = None
    remaining = 0  # data bytes of `packet` still to come
    consumed = 0  # plaintext offset of the chunk's first byte (for error messages)
    for chunk in chunks:
        if carry:
            consumed -= len(carry)
            chunk, carry = carry + chunk, b""
        pos, end = 0, len(chunk)
        while pos < end:
            if remaining and packet is not None:
                take = min(remaining, end - pos)
                yield Fragment(packet, chunk[pos : pos + take], False)
                pos += take
                remaining -= take
                continue
            if end - pos < _LENGTH.size:
                carry = chunk[pos:]
                break
            (total,) = _LENGTH.unpack_from(chunk, pos)
            if total < _FIXED:
                raise FormatError(
                    f"corrupted: packet at plaintext byte {consumed + pos} has length {total} (minimum 13)"
                )
            if end - pos < _HEADER.size:
                carry = chunk[pos:]
                break
            _, source, code, elapsed = _HEADER.unpack_from(chunk, pos)
            if source not in SOURCE_NAMES:
                raise FormatError(f"corrupted: packet at plaintext byte {consumed + pos} has source {source}")
            packet = PacketHeader(source, code, elapsed, total - _FIXED)
            pos += _HEADER.size
            take = min(packet.size, end - pos)
            yield Fragment(packet, chunk[pos : pos + take], True)
            pos += take
            remaining = packet.size - take
        consumed += end
    if carry or remaining:
        raise FormatError(f"truncated: the data ends inside a packet, after {consumed} plaintext bytes")
