"""A session described as JSON, which `logs encrypt` turns into a real capture (tests, demos):

    {"started_at": 1700000000,
     "pty": {"term": "xterm", "width": 80, "height": 24, "modes": [["ECHO", 1]]} | null,
     "exit_data": {"timestamp": 1700000060, "status": 0} | null,
     "packets": [{"source": "server", "elapsed_us": 1500, "text": "$ "},
                 {"source": "client", "elapsed_us": 900000, "base64": "bHMNCg==", "code": 0}]}

pty and exit_data use the capture metadata's own shapes and rules.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, BinaryIO

from sshd_setup.sessionlog.capture import CaptureWriter
from sshd_setup.sessionlog.metadata import (
    LAST_DATE,
    U32_MAX,
    U64_MAX,
    ExitData,
    Metadata,
    Pty,
    exit_from_json,
    pty_from_json,
)
from sshd_setup.sessionlog.packets import CLIENT, SERVER
from sshd_setup.sessionlog.problems import FormatError

_SOURCES = {"client": CLIENT, "server": SERVER}


@dataclass(frozen=True)
class SpecPacket:
    source: int
    elapsed_us: int
    data: bytes
    code: int = 0


@dataclass(frozen=True)
class SessionSpec:
    started_at: int
    pty: Pty | None
    exit_data: ExitData | None
    packets: tuple[SpecPacket, ...]


def spec_from_json(obj: Any) -> SessionSpec:
    if not isinstance(obj, dict):
        raise FormatError("the session must be a JSON object")
    started = _uint(obj.get("started_at"), LAST_DATE, "started_at")
    packets = obj.get("packets", [])
    if not isinstance(packets, list):
        raise FormatError("packets must be a list")
    return SessionSpec(
        started_at=started,
        pty=None if obj.get("pty") is None else pty_from_json(obj["pty"]),
        exit_data=None if obj.get("exit_data") is None else exit_from_json(obj["exit_data"]),
        packets=tuple(_packet(p, i) for i, p in enumerate(packets)),
    )


def _packet(obj: Any, index: int) -> SpecPacket:
    where = f"packets[{index}]"
    if not isinstance(obj, dict):
        raise FormatError(f"{where} must be an object")
    name = obj.get("source")
    source = _SOURCES.get(name) if isinstance(name, str) else None
    if source is None:
        raise FormatError(f'{where}.source must be "client" or "server"')
    if isinstance(obj.get("text"), str) == ("base64" in obj):
        raise FormatError(f'{where} needs exactly one of "text" (UTF-8) or "base64"')
    if "base64" in obj:
        try:
            data = base64.b64decode(obj["base64"], validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise FormatError(f"{where}.base64 is not base64") from None
    else:
        data = obj["text"].encode()
    elapsed = _uint(obj.get("elapsed_us"), U64_MAX, f"{where}.elapsed_us")
    return SpecPacket(source, elapsed, data, _uint(obj.get("code", 0), U32_MAX, f"{where}.code"))


def _uint(value: Any, limit: int, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise FormatError(f"{where} must be an unsigned integer up to {limit}")
    return value


def write_spec(spec: SessionSpec, out: BinaryIO, public_key: bytes, block_size: int) -> Metadata:
    writer = CaptureWriter(out, public_key, started_at=spec.started_at, pty=spec.pty, block_size=block_size)
    try:
        for p in spec.packets:
            writer.packet(p.source, p.elapsed_us, p.data, p.code)
        return writer.finish(spec.exit_data)
    finally:
        writer.close()
