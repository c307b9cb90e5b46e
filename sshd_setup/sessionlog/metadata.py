"""The capture's header: 4-byte big-endian length L, then L bytes of base64 of a JSON object.

    {"started_at": u64, "data_size": u64, "encapsulated_key": "<hex>",
     "pty": null | {"term": str|null, "width": u32, "height": u32, "modes": [[name, u32], ...]},
     "exit_data": null | {"timestamp": u64, "status": u32|null, "signal": str|null,
                          "core_dumped": bool (default false), "error_msg": str|null}}

Parsing is as strict as the vendor's serde types: a missing non-optional field, a float or a negative
number, or a value of the wrong type is an error; unknown fields are ignored.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from dataclasses import dataclass
from typing import Any

from sshd_setup.sessionlog.problems import FormatError

U32_MAX = 2**32 - 1
U64_MAX = 2**64 - 1
LAST_DATE = 253402300799  # 9999-12-31 23:59:59 UTC: later dates cannot be written as YYYY-MM-DD
LENGTH = struct.Struct(">I")


@dataclass(frozen=True)
class Pty:
    term: str | None
    width: int
    height: int
    modes: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class ExitData:
    timestamp: int
    status: int | None = None
    signal: str | None = None
    core_dumped: bool = False
    error_msg: str | None = None


@dataclass(frozen=True)
class Metadata:
    started_at: int
    data_size: int
    encapsulated_key: bytes
    pty: Pty | None = None
    exit_data: ExitData | None = None


def parse_metadata(b64: bytes) -> Metadata:
    """The header's base64 text → Metadata; FormatError("bad metadata: ...") on anything else."""
    try:
        raw = base64.b64decode(b64, validate=True)
    except binascii.Error:
        raise FormatError("bad metadata: not base64") from None
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise FormatError("bad metadata: not JSON") from None
    return metadata_from_json(obj)


def metadata_from_json(obj: Any) -> Metadata:
    top = _object(obj, "metadata")
    enc_hex = _str(top, "encapsulated_key", "metadata")
    try:
        enc = bytes.fromhex(enc_hex)
    except ValueError:
        raise FormatError("bad metadata: encapsulated_key is not hex") from None
    started = _uint(top, "started_at", U64_MAX, "metadata")
    if started > LAST_DATE:
        raise FormatError(f"bad metadata: started_at {started} is after the year 9999")
    return Metadata(
        started_at=started,
        data_size=_uint(top, "data_size", U64_MAX, "metadata"),
        encapsulated_key=enc,
        pty=None if top.get("pty") is None else pty_from_json(top["pty"]),
        exit_data=None if top.get("exit_data") is None else exit_from_json(top["exit_data"]),
    )


def pty_from_json(obj: Any) -> Pty:
    pty = _object(obj, "pty")
    modes_raw = pty.get("modes")
    if not isinstance(modes_raw, list):
        raise FormatError("bad metadata: pty.modes must be a list of [name, value] pairs")
    modes = []
    for mode in modes_raw:
        if not (isinstance(mode, list) and len(mode) == 2 and isinstance(mode[0], str)):
            raise FormatError("bad metadata: pty.modes must be a list of [name, value] pairs")
        modes.append((mode[0], _uint({"value": mode[1]}, "value", U32_MAX, f"pty.modes[{mode[0]}]")))
    return Pty(
        term=_opt_str(pty, "term", "pty"),
        width=_uint(pty, "width", U32_MAX, "pty"),
        height=_uint(pty, "height", U32_MAX, "pty"),
        modes=tuple(modes),
    )


def exit_from_json(obj: Any) -> ExitData:
    ex = _object(obj, "exit_data")
    timestamp = _uint(ex, "timestamp", U64_MAX, "exit_data")
    if timestamp > LAST_DATE:
        raise FormatError(f"bad metadata: exit_data.timestamp {timestamp} is after the year 9999")
    core = ex.get("core_dumped", False)
    if not isinstance(core, bool):
        raise FormatError("bad metadata: exit_data.core_dumped must be true or false")
    status = None if ex.get("status") is None else _uint(ex, "status", U32_MAX, "exit_data")
    return ExitData(
        timestamp=timestamp,
        status=status,
        signal=_opt_str(ex, "signal", "exit_data"),
        core_dumped=core,
        error_msg=_opt_str(ex, "error_msg", "exit_data"),
    )


def metadata_to_json(meta: Metadata) -> dict[str, Any]:
    """Field order and shapes as the gateway writes them."""
    pty = meta.pty
    ex = meta.exit_data
    return {
        "started_at": meta.started_at,
        "data_size": meta.data_size,
        "encapsulated_key": meta.encapsulated_key.hex(),
        "pty": None
        if pty is None
        else {"term": pty.term, "width": pty.width, "height": pty.height, "modes": [list(m) for m in pty.modes]},
        "exit_data": None
        if ex is None
        else {
            "timestamp": ex.timestamp,
            "status": ex.status,
            "signal": ex.signal,
            "core_dumped": ex.core_dumped,
            "error_msg": ex.error_msg,
        },
    }


def encode_header(meta: Metadata) -> bytes:
    text = base64.b64encode(json.dumps(metadata_to_json(meta), separators=(",", ":")).encode())
    return LENGTH.pack(len(text)) + text


# -- strict field readers ---------------------------------------------------------------------------


def _object(obj: Any, where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise FormatError(f"bad metadata: {where} must be a JSON object")
    return obj


def _uint(obj: dict[str, Any], key: str, limit: int, where: str) -> int:
    if key not in obj:
        raise FormatError(f"bad metadata: {where}.{key} is missing")
    value = obj[key]
    # bool is an int in Python, not in JSON; floats (1.0, 1e3) are not integers for serde either
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        bits = 32 if limit == U32_MAX else 64
        raise FormatError(f"bad metadata: {where}.{key} must be an unsigned {bits}-bit integer, not {value!r}")
    return value


def _str(obj: dict[str, Any], key: str, where: str) -> str:
    if key not in obj:
        raise FormatError(f"bad metadata: {where}.{key} is missing")
    value = _opt_str(obj, key, where)
    if value is None:
        raise FormatError(f"bad metadata: {where}.{key} must be a string")
    return value


def _opt_str(obj: dict[str, Any], key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise FormatError(f"bad metadata: {where}.{key} must be a string or null")
    return value
