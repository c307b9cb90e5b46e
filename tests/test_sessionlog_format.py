"""The capture format's pure parts: packet stream, metadata, timing numbers, replay pacing, the writer."""

from __future__ import annotations

import base64
import io
import itertools
import json
import struct
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from sshd_setup.sessionlog.archive import decrypt_to_zip
from sshd_setup.sessionlog.capture import CaptureReader, CaptureWriter, read_metadata
from sshd_setup.sessionlog.metadata import ExitData, Metadata, Pty, encode_header, parse_metadata
from sshd_setup.sessionlog.packets import CLIENT, SERVER, Fragment, PacketHeader, encode_packet, iter_fragments
from sshd_setup.sessionlog.problems import FormatError
from sshd_setup.sessionlog.replay import play, replay_steps
from sshd_setup.sessionlog.transcript import seconds_f32


def _key_pair() -> tuple[bytes, bytes]:
    sk = X25519PrivateKey.generate()
    return (
        sk.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()),
        sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
    )


def _b64json(obj: object) -> bytes:
    return base64.b64encode(json.dumps(obj).encode())


# -- packet stream ---------------------------------------------------------------------------------

packets_strategy = st.lists(
    st.tuples(
        st.sampled_from([CLIENT, SERVER]),
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**64 - 1),
        st.binary(max_size=40),
    ),
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(packets=packets_strategy, cuts=st.lists(st.integers(0, 600), max_size=30))
def test_packets_survive_any_chunking(packets: list[tuple[int, int, int, bytes]], cuts: list[int]) -> None:
    stream = b"".join(encode_packet(src, elapsed, data, code) for src, code, elapsed, data in packets)
    bounds = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
    chunks = [stream[a:b] for a, b in itertools.pairwise(bounds)]
    rebuilt: list[tuple[int, int, int, bytes]] = []
    for frag in iter_fragments(chunks):
        if frag.first:
            rebuilt.append((frag.packet.source, frag.packet.code, frag.packet.elapsed_us, b""))
        src, code, elapsed, data = rebuilt[-1]
        assert frag.packet.size == len(packets[len(rebuilt) - 1][3])
        rebuilt[-1] = (src, code, elapsed, data + frag.data)
    assert rebuilt == packets


def test_packet_wire_layout() -> None:
    raw = encode_packet(SERVER, 0x0102030405060708, b"hi", code=94)
    assert raw == struct.pack(">I", 15) + b"\x01" + struct.pack(">I", 94) + bytes(range(1, 9)) + b"hi"
    (frag,) = iter_fragments([raw])
    assert frag == Fragment(PacketHeader(SERVER, 94, 0x0102030405060708, 2), b"hi", True)


def test_a_large_packet_comes_out_in_pieces_as_blocks_arrive() -> None:
    raw = encode_packet(CLIENT, 5, b"x" * 1000)
    frags = list(iter_fragments([raw[:10], raw[10:17], raw[17:500], raw[500:]]))  # header cut at 10
    assert [len(f.data) for f in frags] == [0, 483, 517]
    assert [f.first for f in frags] == [True, False, False]


@pytest.mark.parametrize(
    ("stream", "problem"),
    [
        (struct.pack(">I", 12) + bytes(12), "has length 12 (minimum 13)"),
        (struct.pack(">IBIQ", 13, 2, 0, 0), "has source 2"),
        (encode_packet(SERVER, 1, b"abc")[:-1], "truncated: the data ends inside a packet"),
        (encode_packet(SERVER, 1, b"abc")[:9], "truncated"),
        (encode_packet(SERVER, 1, b"abc") + b"\x00\x00", "truncated"),
    ],
)
def test_bad_packet_streams(stream: bytes, problem: str) -> None:
    with pytest.raises(FormatError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        list(iter_fragments([stream]))


# -- metadata --------------------------------------------------------------------------------------

GOOD = {
    "started_at": 1700000000,
    "data_size": 10,
    "encapsulated_key": "ab" * 32,
    "pty": {"term": None, "width": 80, "height": 24, "modes": [["ECHO", 1], ["ICRNL", 0]]},
    "exit_data": {"timestamp": 1700000001, "status": None, "signal": "KILL", "error_msg": None},
}


def test_metadata_parses_serde_shapes_with_defaults_and_unknown_fields() -> None:
    meta = parse_metadata(_b64json({**GOOD, "future_field": [1, 2]}))
    assert meta == Metadata(
        started_at=1700000000,
        data_size=10,
        encapsulated_key=b"\xab" * 32,
        pty=Pty(None, 80, 24, (("ECHO", 1), ("ICRNL", 0))),
        exit_data=ExitData(1700000001, None, "KILL", False, None),  # core_dumped defaults to false
    )
    assert parse_metadata(_b64json({**GOOD, "pty": None, "exit_data": None})).pty is None
    assert parse_metadata(_b64json({k: v for k, v in GOOD.items() if k not in ("pty", "exit_data")})).pty is None


def test_metadata_header_round_trip() -> None:
    meta = parse_metadata(_b64json(GOOD))
    f = io.BytesIO(encode_header(meta) + b"rest")
    assert read_metadata(f) == meta
    assert f.read() == b"rest"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (b"!!!!", "not base64"),
        (base64.b64encode(b"{not json"), "not JSON"),
        (_b64json([1, 2]), "metadata must be a JSON object"),
        (_b64json({k: v for k, v in GOOD.items() if k != "data_size"}), "metadata.data_size is missing"),
        (_b64json({**GOOD, "started_at": "1700000000"}), "started_at must be an unsigned 64-bit integer"),
        (_b64json({**GOOD, "started_at": 1.5}), "started_at must be an unsigned 64-bit integer"),
        (_b64json({**GOOD, "data_size": -1}), "data_size must be an unsigned 64-bit integer"),
        (_b64json({**GOOD, "started_at": 10**15}), "after the year 9999"),
        (_b64json({**GOOD, "encapsulated_key": "zz"}), "encapsulated_key is not hex"),
        (_b64json({**GOOD, "pty": {"term": "x", "width": 2**32, "height": 1, "modes": []}}), "pty.width"),
        (_b64json({**GOOD, "pty": {"term": 5, "width": 1, "height": 1, "modes": []}}), "pty.term"),
        (_b64json({**GOOD, "pty": {"term": "x", "width": 1, "height": 1}}), "pty.modes"),
        (_b64json({**GOOD, "exit_data": {"status": 0}}), "exit_data.timestamp is missing"),
        (_b64json({**GOOD, "exit_data": {"timestamp": 1, "core_dumped": 1}}), "core_dumped must be true or false"),
        (_b64json({**GOOD, "exit_data": {"timestamp": 1, "status": True}}), "exit_data.status"),
    ],
)
def test_bad_metadata(text: bytes, problem: str) -> None:
    with pytest.raises(FormatError, match=problem):
        parse_metadata(text)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "empty file"),
        (b"\x00\x00", "too short for the metadata length"),
        (struct.pack(">I", 100) + b"abc", "the metadata needs 100 bytes, only 3 follow"),
        (struct.pack(">I", 2**31), "over 1048576 bytes"),
        (b"PK\x03\x04rest", "ZIP file"),
        (encode_header(Metadata(1, 0, b"\x01" * 31)), "encapsulated_key is 31 bytes"),
    ],
)
def test_bad_header(data: bytes, problem: str) -> None:
    with pytest.raises(FormatError, match=problem):
        read_metadata(io.BytesIO(data))


# -- timing numbers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("micros", "text"),
    [  # expected values printed by C: printf("%.6f", (float)(float)n / 1000000.0f), as Rust's f32 code
        (0, "0.000000"),
        (1, "0.000001"),
        (250000, "0.250000"),
        (999999, "0.999999"),
        (16777217, "16.777216"),
        (16007813, "16.007812"),  # the f32 is exactly 16.0078125: a tie, rounded to even
        (123456789, "123.456795"),  # not 123.456789: the integer already rounds to 123456792 as f32
        (86400000000, "86400.000000"),
        (9007199254740993, "9007199232.000000"),  # above 2**53: rounded straight to f32, no double rounding
        (2**64 - 1, "18446744027136.000000"),
    ],
)
def test_timing_seconds_use_32_bit_floats_like_the_vendor_tool(micros: int, text: str) -> None:
    assert seconds_f32(micros) == text


# -- replay pacing ---------------------------------------------------------------------------------


def _frag(source: int, elapsed: int, data: bytes, first: bool = True) -> Fragment:
    return Fragment(PacketHeader(source, 0, elapsed, len(data)), data, first)


def test_replay_waits_between_server_packets_only_and_honours_speed_and_cap() -> None:
    frags = [
        _frag(SERVER, 500_000, b"$ "),
        _frag(CLIENT, 900_000, b"ls\r"),
        _frag(SERVER, 2_500_000, b"ls"),
        _frag(SERVER, 2_500_000, b"\r\n", first=False),
        _frag(SERVER, 2_000_000, b"back in time"),
        _frag(SERVER, 62_000_000, b"late"),
    ]
    assert list(replay_steps(frags)) == [
        (0.5, b"$ "),
        (2.0, b"ls"),
        (0.0, b"\r\n"),
        (0.0, b"back in time"),
        (60.0, b"late"),
    ]
    slept: list[float] = []
    out = io.BytesIO()
    play(replay_steps(frags), out, speed=4.0, max_delay=10.0, sleep=slept.append)
    assert slept == [0.125, 0.5, 10.0]
    assert out.getvalue() == b"$ ls\r\nback in timelate"


# -- writer ----------------------------------------------------------------------------------------


def test_writer_cuts_plaintext_into_blocks_of_the_given_size(tmp_path: Path) -> None:
    private, public = _key_pair()
    out = io.BytesIO()
    writer = CaptureWriter(out, public, started_at=5, pty=None, block_size=7)
    writer.packet(SERVER, 1, b"012345")  # 17 + 6 = 23 plaintext bytes
    writer.write(b"\x00")  # one byte more: 24 = 7 + 7 + 7 + 3
    meta = writer.finish(None)
    assert meta.data_size == 24
    f = io.BytesIO(out.getvalue())
    assert read_metadata(f) == meta
    sizes = []
    while prefix := f.read(4):
        (n,) = struct.unpack(">I", prefix)
        f.read(n)
        sizes.append(n)
    assert sizes == [7 + 16, 7 + 16, 7 + 16, 3 + 16]
    capture = tmp_path / "c"
    capture.write_bytes(out.getvalue())
    with CaptureReader(capture, private) as reader, pytest.raises(FormatError, match="inside a packet"):
        list(reader.fragments())  # the stray byte is the start of a packet that never ends


def test_decrypt_memory_stays_flat(tmp_path: Path) -> None:
    """A 24 MB capture must decrypt with a few MB of Python allocations at most (no whole-file reads,
    no whole-member buffers)."""
    private, public = _key_pair()
    capture = tmp_path / "big"
    chunk = bytes(range(256)) * 16  # 4 KiB
    with capture.open("wb") as f:
        writer = CaptureWriter(f, public, started_at=1, pty=Pty("xterm", 80, 24), block_size=16384)
        for i in range(6 * 1024):
            writer.packet(SERVER if i % 8 else CLIENT, i * 1000, chunk)
        writer.finish(ExitData(2, 0))
    assert capture.stat().st_size > 24 * 10**6
    tracemalloc.start()
    try:
        decrypt_to_zip(capture, private, tmp_path / "out.zip")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * 2**20, f"peak {peak} bytes"
    with zipfile.ZipFile(tmp_path / "out.zip") as zf:
        assert zf.getinfo("term_data.txt").file_size > 21 * 10**6
