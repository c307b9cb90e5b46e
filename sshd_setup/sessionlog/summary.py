"""`logs show`: a capture's metadata plus what its decrypted stream holds."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sshd_setup.sessionlog.metadata import ExitData, Metadata
from sshd_setup.sessionlog.packets import CLIENT, Fragment
from sshd_setup.sessionlog.transcript import format_date


@dataclass(frozen=True)
class Summary:
    meta: Metadata
    client_packets: int = 0
    client_bytes: int = 0
    server_packets: int = 0
    server_bytes: int = 0
    last_packet_us: int | None = None


def summarize(meta: Metadata, fragments: Iterable[Fragment]) -> Summary:
    counts = {"client_packets": 0, "client_bytes": 0, "server_packets": 0, "server_bytes": 0}
    last: int | None = None
    for frag in fragments:
        side = "client" if frag.packet.source == CLIENT else "server"
        counts[f"{side}_bytes"] += len(frag.data)
        if frag.first:
            counts[f"{side}_packets"] += 1
            last = frag.packet.elapsed_us if last is None else max(last, frag.packet.elapsed_us)
    return Summary(meta, last_packet_us=last, **counts)


def describe_exit(exit_data: ExitData | None) -> str:
    if exit_data is None:
        return "no termination data"
    if exit_data.error_msg is not None:
        return f"error: {exit_data.error_msg}"
    parts = []
    if exit_data.signal is not None:
        parts.append(f"killed by signal {exit_data.signal}")
    if exit_data.core_dumped:
        parts.append("core dumped")
    if exit_data.status is not None or not parts:
        parts.insert(0, f"exit status {0 if exit_data.status is None else exit_data.status}")
    return ", ".join(parts)


def describe_terminal(meta: Metadata) -> str:
    if meta.pty is None:
        return "none (no PTY: command or forwarding session)"
    term = meta.pty.term or "unknown"
    return f"{term} {meta.pty.width}x{meta.pty.height}"


def to_dict(s: Summary) -> dict[str, Any]:
    """The --json shape: stable keys, unix seconds and UTC text side by side."""
    m = s.meta
    ex = m.exit_data
    return {
        "started_at": m.started_at,
        "started": format_date(m.started_at),
        "ended_at": None if ex is None else ex.timestamp,
        "ended": None if ex is None else format_date(ex.timestamp),
        "duration_seconds": None if ex is None else ex.timestamp - m.started_at,
        "pty": None
        if m.pty is None
        else {
            "term": m.pty.term,
            "width": m.pty.width,
            "height": m.pty.height,
            "modes": [list(mode) for mode in m.pty.modes],
        },
        "exit": None
        if ex is None
        else {
            "status": ex.status,
            "signal": ex.signal,
            "core_dumped": ex.core_dumped,
            "error_msg": ex.error_msg,
        },
        "exit_summary": describe_exit(ex),
        "data_size": m.data_size,
        "client": {"packets": s.client_packets, "bytes": s.client_bytes},
        "server": {"packets": s.server_packets, "bytes": s.server_bytes},
        "last_packet_seconds": None if s.last_packet_us is None else s.last_packet_us / 1_000_000,
    }


def rows(s: Summary) -> list[tuple[str, str]]:
    """(label, value) lines for the table."""
    d = to_dict(s)
    duration = d["duration_seconds"]
    last = d["last_packet_seconds"]
    return [
        ("Started", f"{d['started']} (unix {d['started_at']})"),
        ("Ended", "—" if d["ended"] is None else f"{d['ended']} (unix {d['ended_at']})"),
        ("Duration", "—" if duration is None else f"{duration} s"),
        ("Terminal", describe_terminal(s.meta)),
        ("Exit", d["exit_summary"]),
        ("From client", _traffic(s.client_bytes, s.client_packets)),
        ("From server", _traffic(s.server_bytes, s.server_packets)),
        ("Last packet", "—" if last is None else f"+{last:.6f} s"),
    ]


def _traffic(size: int, packets: int) -> str:
    return f"{size} byte{'' if size == 1 else 's'} in {packets} packet{'' if packets == 1 else 's'}"
