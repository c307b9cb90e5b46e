"""What `logs decrypt` writes, byte for byte as the vendor's tool does.

PTY sessions become a scriptreplay pair: term_data.txt (a header line, the server's output — client
packets are skipped because the server echoes input — and an end line) and term_times.txt (one line
per server packet: "<seconds since the previous server packet, 6 decimals> <bytes>").
Other sessions become data_from_client.txt and data_from_server.txt, each direction's data joined.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO

from sshd_setup.sessionlog.metadata import ExitData, Metadata, Pty
from sshd_setup.sessionlog.packets import CLIENT, Fragment

PTY_MEMBERS = ("term_data.txt", "term_times.txt")
RAW_MEMBERS = ("data_from_client.txt", "data_from_server.txt")

_F32 = struct.Struct("f")


def format_date(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S+00")


def session_header(started_at: int, pty: Pty) -> bytes:
    term = "unknown" if pty.term is None else pty.term
    return (
        f'Session started on {format_date(started_at)} [TERM="{term}" COLUMNS="{pty.width}" LINES="{pty.height}"]\n'
    ).encode()


def session_trailer(exit_data: ExitData | None) -> bytes:
    if exit_data is None:
        return b"\nSession has no termination data\n"
    end = format_date(exit_data.timestamp)
    if exit_data.error_msg is not None:
        detail = f'ERROR="{exit_data.error_msg}"'
    elif exit_data.core_dumped:
        detail = "CORE DUMPED"
    else:
        detail = f'COMMAND_EXIT_CODE="{0 if exit_data.status is None else exit_data.status}"'
    return f"\nScript done on {end} [{detail}]\n".encode()


def seconds_f32(micros: int) -> str:
    """micros / 1e6 with 6 decimals, computed in 32-bit floats as the vendor's tool does: it prints
    123.456795 for 123456789 µs. Python's rounding of the (exact) float matches Rust's formatting."""
    as_f32 = _round_to_f32(micros)
    (quotient,) = _F32.unpack(_F32.pack(as_f32 / 1_000_000.0))  # double quotient → nearest f32: exact
    return f"{quotient:.6f}"


def _round_to_f32(n: int) -> float:
    """The f32 nearest to the integer n (ties to even), exactly, even above 2**53."""
    excess = n.bit_length() - 24
    if excess > 0:
        q, r = divmod(n, 1 << excess)
        half = 1 << (excess - 1)
        if r > half or (r == half and q & 1):
            q += 1
        n = q << excess
    return float(n)


def timing_line(delta_us: int, size: int) -> bytes:
    return f"{seconds_f32(delta_us)} {size}\n".encode()


def write_pty_transcript(
    meta: Metadata, pty: Pty, fragments: Iterable[Fragment], data_out: IO[bytes], times_out: IO[bytes]
) -> None:
    data_out.write(session_header(meta.started_at, pty))
    last_us = 0
    for frag in fragments:
        if frag.packet.source == CLIENT:
            continue
        if frag.first:
            # Time going backwards would print "inf" in the vendor's tool; a zero pause is kinder.
            elapsed = frag.packet.elapsed_us
            times_out.write(timing_line(max(0, elapsed - last_us), frag.packet.size))
            last_us = elapsed
        data_out.write(frag.data)
    data_out.write(session_trailer(meta.exit_data))


def write_raw_streams(fragments: Iterable[Fragment], client_out: IO[bytes], server_out: IO[bytes]) -> None:
    for frag in fragments:
        (client_out if frag.packet.source == CLIENT else server_out).write(frag.data)
