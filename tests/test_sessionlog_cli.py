"""`sshd-setup logs ...` end to end: real keys, real HPKE captures, the real command line.

Expected outputs are spelled out here byte for byte (from the vendor tool's format), not computed with
the code under test.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import struct
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from sshd_setup.cli import main
from sshd_setup.sessionlog.capture import CaptureWriter
from sshd_setup.sessionlog.metadata import ExitData, Pty
from sshd_setup.sessionlog.packets import CLIENT, SERVER

Run = Callable[..., tuple[int, str, str]]

HEADER = 'Session started on 2023-11-14 22:13:20+00 [TERM="{term}" COLUMNS="132" LINES="43"]\n'
LONG = b"".join(b"-rw-r--r-- 1 root root %4d file%03d\r\n" % (i * 7, i) for i in range(40))  # ~1.4 KB


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """Run `sshd-setup logs ARGS...` in process through the real entry point: (exit code, stdout, stderr)."""

    def _run(*args: str | Path) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["sshd-setup", "logs", *map(str, args)])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return _run


@pytest.fixture
def keys(tmp_path: Path, run: Run) -> Iterator[tuple[Path, Path]]:
    key = tmp_path / "keys" / "sshkey"
    key.parent.mkdir()
    code, _, err = run("keygen", "-o", key)
    assert code == 0, err
    yield key, key.with_name("sshkey.pub")


def _spec(tmp_path: Path, name: str, spec: dict[str, Any]) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(spec))
    return path


def _zip_members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _one_error_line(err: str) -> str:
    assert err.endswith("\n") and err.count("\n") == 1, repr(err)
    assert err.startswith("sshd-setup: error: "), err
    return err


# -- keygen ----------------------------------------------------------------------------------------


def test_keygen_writes_vendor_compatible_files(tmp_path: Path, run: Run) -> None:
    key = tmp_path / "sshkey"
    code, out, err = run("keygen", "-o", key)
    assert code == 0, err
    private, public = key.read_bytes(), (tmp_path / "sshkey.pub").read_bytes()
    # base64 of the raw 32-byte keys, no newline, no header
    assert len(private) == len(public) == 44 and not private.endswith(b"\n")
    assert base64.b64encode(base64.b64decode(private, validate=True)) == private
    expected_public = (
        X25519PrivateKey.from_private_bytes(base64.b64decode(private))
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )
    assert base64.b64decode(public) == expected_public
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert out == public.decode() + "\n"  # the line to paste into the gateway


def test_keygen_refuses_to_overwrite_without_force(tmp_path: Path, run: Run) -> None:
    key = tmp_path / "sshkey"
    (tmp_path / "sshkey.pub").write_text("keep me")
    code, _, err = run("keygen", "-o", key)
    assert code == 2
    assert "sshkey.pub: already exists (use --force" in _one_error_line(err)
    assert not key.exists() and (tmp_path / "sshkey.pub").read_text() == "keep me"
    code, _, err = run("keygen", "-o", key, "--force")
    assert code == 0, err
    assert len((tmp_path / "sshkey.pub").read_bytes()) == 44
    first = key.read_bytes()
    assert run("keygen", "-o", key)[0] == 2 and key.read_bytes() == first
    assert run("keygen", "-o", key, "--force")[0] == 0 and key.read_bytes() != first
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


# -- round trips -----------------------------------------------------------------------------------

PTY_PACKETS = [
    {"source": "server", "elapsed_us": 250000, "text": "$ "},
    {"source": "client", "elapsed_us": 900000, "text": "ls -l\r"},
    {"source": "server", "elapsed_us": 1000000, "base64": base64.b64encode(b"ls -l\r\n" + LONG).decode()},
    {"source": "client", "elapsed_us": 2000000, "base64": "BA==", "code": 7},
    {"source": "server", "elapsed_us": 124456789, "text": "exit\r\n"},
    {"source": "server", "elapsed_us": 124456789, "text": ""},
    {"source": "server", "elapsed_us": 124000000, "text": "~"},  # clock went back: a zero pause
]
PTY_TIMES = (
    "0.250000 2\n"
    f"0.750000 {7 + len(LONG)}\n"
    "123.456795 6\n"  # 32-bit float arithmetic, as the vendor's tool prints it
    "0.000000 0\n"
    "0.000000 1\n"
)


@pytest.mark.parametrize(
    ("term", "exit_data", "trailer"),
    [
        ("xterm-256color", {"timestamp": 1700000200, "status": 3}, '[COMMAND_EXIT_CODE="3"]'),
        ("xterm-256color", {"timestamp": 1700000200, "status": None, "signal": "HUP"}, '[COMMAND_EXIT_CODE="0"]'),
        (None, {"timestamp": 1700000200, "status": 139, "signal": "SEGV", "core_dumped": True}, "[CORE DUMPED]"),
        (
            "vt100",
            {"timestamp": 1700000200, "core_dumped": True, "error_msg": "channel lost"},
            '[ERROR="channel lost"]',
        ),
        ("vt100", None, None),
    ],
)
def test_pty_session_round_trip(
    tmp_path: Path,
    run: Run,
    keys: tuple[Path, Path],
    term: str | None,
    exit_data: dict[str, Any] | None,
    trailer: str | None,
) -> None:
    key, pub = keys
    pty = {"term": term, "width": 132, "height": 43, "modes": [["ECHO", 1], ["ICANON", 1]]}
    spec = _spec(
        tmp_path, "pty", {"started_at": 1700000000, "pty": pty, "exit_data": exit_data, "packets": PTY_PACKETS}
    )
    capture = tmp_path / "session.bin"
    code, _, err = run("encrypt", "-s", spec, "-k", pub, "-o", capture, "--block-size", "13")
    assert code == 0, err
    code, _, err = run("decrypt", "-c", capture, "-k", key)
    assert code == 0, err
    out = tmp_path / "session.bin-decrypted.zip"  # the vendor's default name
    end = (
        "\nSession has no termination data\n"
        if trailer is None
        else f"\nScript done on 2023-11-14 22:16:40+00 {trailer}\n"
    )
    assert _zip_members(out) == {
        "term_data.txt": HEADER.format(term=term or "unknown").encode()
        + b"$ "
        + b"ls -l\r\n"
        + LONG
        + b"exit\r\n"
        + b"~"
        + end.encode(),
        "term_times.txt": PTY_TIMES.encode(),
    }
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # decrypted session data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys", "pty.json", "session.bin", out.name]


def test_raw_session_round_trip(tmp_path: Path, run: Run, keys: tuple[Path, Path]) -> None:
    key, pub = keys
    client = [b"SSH-2.0-client\r\n", bytes(range(256)), b"", b"\xff" * 100]
    server = [bytes(range(255, -1, -1)) * 3, b"\x00", b"done"]
    packets = []
    for i in range(max(len(client), len(server))):
        for source, chunks in (("client", client), ("server", server)):
            if i < len(chunks):
                data = base64.b64encode(chunks[i]).decode()
                packets.append({"source": source, "elapsed_us": i * 1000, "base64": data, "code": 94})
    spec = _spec(tmp_path, "raw", {"started_at": 1, "pty": None, "exit_data": None, "packets": packets})
    capture = tmp_path / "raw.cap"
    assert run("encrypt", "-s", spec, "-k", pub, "-o", capture, "--block-size", "5")[0] == 0
    out = tmp_path / "decrypted" / "raw.zip"
    out.parent.mkdir()
    code, _, err = run("decrypt", "--input", capture, "-k", key, "-o", out)  # the old long name still works
    assert code == 0, err
    assert "raw.zip" in err
    assert _zip_members(out) == {
        "data_from_client.txt": b"".join(client),
        "data_from_server.txt": b"".join(server),
    }
    assert os.listdir(out.parent) == ["raw.zip"]


def test_show_table_and_json(tmp_path: Path, run: Run, keys: tuple[Path, Path]) -> None:
    key, pub = keys
    pty = {"term": "xterm-256color", "width": 132, "height": 43, "modes": [["ECHO", 1]]}
    exit_data = {"timestamp": 1700000200, "status": None, "signal": "TERM"}
    spec = _spec(tmp_path, "s", {"started_at": 1700000000, "pty": pty, "exit_data": exit_data, "packets": PTY_PACKETS})
    capture = tmp_path / "c"
    assert run("encrypt", "-s", spec, "-k", pub, "-o", capture)[0] == 0
    code, out, err = run("show", "-c", capture, "-k", key)
    assert code == 0, err
    for text in ("2023-11-14 22:13:20+00", "2023-11-14 22:16:40+00", "200 s", "xterm-256color 132x43"):
        assert text in out
    assert "killed by signal TERM" in out
    code, out, err = run("show", "-c", capture, "-k", key, "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["started"] == "2023-11-14 22:13:20+00" and shown["ended_at"] == 1700000200
    assert shown["pty"] == {"term": "xterm-256color", "width": 132, "height": 43, "modes": [["ECHO", 1]]}
    assert shown["exit"] == {"status": None, "signal": "TERM", "core_dumped": False, "error_msg": None}
    assert shown["client"] == {"packets": 2, "bytes": 7}
    assert shown["server"] == {"packets": 5, "bytes": 2 + 7 + len(LONG) + 6 + 0 + 1}
    assert shown["last_packet_seconds"] == 124.456789


# -- replay (a real process: it writes raw bytes to stdout) ----------------------------------------


def _cli(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "sshd_setup", "logs", *map(str, args)], capture_output=True, timeout=60, check=False
    )


def test_replay_plays_server_output_at_recorded_pace(tmp_path: Path, run: Run, keys: tuple[Path, Path]) -> None:
    key, pub = keys
    packets = [
        {"source": "server", "elapsed_us": 100000, "text": "$ "},
        {"source": "client", "elapsed_us": 200000, "text": "date\r"},
        {"source": "server", "elapsed_us": 700000, "text": "date\r\nTue\r\n"},
        {"source": "server", "elapsed_us": 1300000, "text": "$ "},
    ]
    pty = {"term": "xterm", "width": 80, "height": 24, "modes": []}
    spec = _spec(tmp_path, "s", {"started_at": 1700000000, "pty": pty, "exit_data": None, "packets": packets})
    capture = tmp_path / "c"
    assert run("encrypt", "-s", spec, "-k", pub, "-o", capture, "--block-size", "9")[0] == 0
    started = time.monotonic()
    done = _cli("decrypt", "-c", capture, "-k", key, "--replay")
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"$ date\r\nTue\r\n$ "
    assert took >= 1.25  # 0.1 + 0.6 + 0.6 s of recorded pauses
    started = time.monotonic()
    fast = _cli("decrypt", "-c", capture, "-k", key, "--replay", "--speed", "4")
    assert fast.stdout == done.stdout and 0.32 <= time.monotonic() - started < took
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c", "keys", "s.json"]  # a replay writes no file


def test_replay_needs_a_pty_session(tmp_path: Path, run: Run, keys: tuple[Path, Path]) -> None:
    key, pub = keys
    spec = _spec(tmp_path, "s", {"started_at": 1, "pty": None, "exit_data": None, "packets": []})
    capture = tmp_path / "c"
    assert run("encrypt", "-s", spec, "-k", pub, "-o", capture)[0] == 0
    code, out, err = run("decrypt", "-c", capture, "-k", key, "--replay")
    assert code == 2 and out == ""
    assert "no PTY" in _one_error_line(err)
    code, _, err = run("decrypt", "-c", capture, "-k", key, "--replay", "-o", tmp_path / "x.zip")
    assert code == 2 and "--replay" in _one_error_line(err)


# -- bad input: one line, exit 2, nothing left behind ---------------------------------------------


def _good_capture(path: Path, public: bytes, block_size: int = 16, extra: bytes = b"") -> dict[str, int]:
    """A PTY capture with several blocks; returns offsets for the corruption cases."""
    with path.open("wb") as f:
        writer = CaptureWriter(f, public, started_at=1700000000, pty=Pty("xterm", 80, 24), block_size=block_size)
        writer.packet(SERVER, 10, b"$ ")
        writer.packet(CLIENT, 20, b"id\r")
        writer.packet(SERVER, 30, b"uid=0(root) gid=0(root)\r\n$ ")
        writer.write(extra)
        writer.finish(ExitData(1700000001, 0))
    data = path.read_bytes()
    (meta_len,) = struct.unpack(">I", data[:4])
    offsets = {"block0": 4 + meta_len}
    for i in range(1, 3):
        (n,) = struct.unpack(">I", data[offsets[f"block{i - 1}"] : offsets[f"block{i - 1}"] + 4])
        offsets[f"block{i}"] = offsets[f"block{i - 1}"] + 4 + n
    return offsets


def _public(pub: Path) -> bytes:
    return base64.b64decode(pub.read_bytes())


def _mutate(path: Path, at: int, new: bytes) -> None:
    data = bytearray(path.read_bytes())
    data[at : at + len(new)] = new
    path.write_bytes(bytes(data))


BAD_CASES: dict[str, tuple[Callable[[Path, Path, Path], list[str]], str]] = {}


def bad_case(problem: str) -> Callable[[Callable[[Path, Path, Path], list[str]]], Any]:
    def register(fn: Callable[[Path, Path, Path], list[str]]) -> Any:
        BAD_CASES[fn.__name__] = (fn, problem)
        return fn

    return register


@bad_case("capture: cannot decrypt: the private key does not match this capture")
def wrong_key(capture: Path, key: Path, pub: Path) -> list[str]:
    other = X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    _good_capture(capture, other)
    return []


@bad_case("looks like a public key file")
def public_key_given_as_private(capture: Path, key: Path, pub: Path) -> list[str]:
    _good_capture(capture, _public(pub))
    return ["-k", str(pub)]


@bad_case("capture: truncated: block 2 at byte")
def truncated_inside_a_block(capture: Path, key: Path, pub: Path) -> list[str]:
    offsets = _good_capture(capture, _public(pub))
    capture.write_bytes(capture.read_bytes()[: offsets["block2"] + 10])
    return []


@bad_case("has 2 of 4 length bytes")
def truncated_inside_a_block_length(capture: Path, key: Path, pub: Path) -> list[str]:
    offsets = _good_capture(capture, _public(pub))
    capture.write_bytes(capture.read_bytes()[: offsets["block1"] + 2])
    return []


@bad_case("truncated: the data ends inside a packet")
def truncated_at_a_block_boundary_inside_a_packet(capture: Path, key: Path, pub: Path) -> list[str]:
    offsets = _good_capture(capture, _public(pub))
    capture.write_bytes(capture.read_bytes()[: offsets["block2"]])
    return []


@bad_case("the metadata needs")
def truncated_inside_the_metadata(capture: Path, key: Path, pub: Path) -> list[str]:
    _good_capture(capture, _public(pub))
    capture.write_bytes(capture.read_bytes()[:40])
    return []


@bad_case("capture: empty file")
def empty_file(capture: Path, key: Path, pub: Path) -> list[str]:
    capture.write_bytes(b"")
    return []


@bad_case("capture: corrupted: block 2 at byte")
def corrupted_block(capture: Path, key: Path, pub: Path) -> list[str]:
    offsets = _good_capture(capture, _public(pub))
    _mutate(capture, offsets["block2"] + 4 + 3, bytes([capture.read_bytes()[offsets["block2"] + 7] ^ 1]))
    return []


@bad_case("corrupted: block 1 at byte")
def corrupted_block_length(capture: Path, key: Path, pub: Path) -> list[str]:
    offsets = _good_capture(capture, _public(pub))
    _mutate(capture, offsets["block1"], b"\xff\xff\xff\xf0")
    return []


@bad_case("has length 5 (minimum 13)")
def corrupted_packet_inside_authentic_blocks(capture: Path, key: Path, pub: Path) -> list[str]:
    _good_capture(capture, _public(pub), extra=struct.pack(">I", 5) + b"12345")
    return []


@bad_case("capture: bad metadata: not base64")
def metadata_not_base64(capture: Path, key: Path, pub: Path) -> list[str]:
    capture.write_bytes(struct.pack(">I", 8) + b"not*b64!")
    return []


@bad_case("capture: bad metadata: metadata.data_size is missing")
def metadata_missing_field(capture: Path, key: Path, pub: Path) -> list[str]:
    text = base64.b64encode(json.dumps({"started_at": 1, "encapsulated_key": "00" * 32, "pty": None}).encode())
    capture.write_bytes(struct.pack(">I", len(text)) + text)
    return []


@bad_case("capture: bad metadata: encapsulated_key is not hex")
def metadata_bad_enc(capture: Path, key: Path, pub: Path) -> list[str]:
    text = base64.b64encode(b'{"started_at":1,"data_size":0,"encapsulated_key":"xyz","pty":null,"exit_data":null}')
    capture.write_bytes(struct.pack(">I", len(text)) + text)
    return []


@bad_case("the output name must end in .zip")
def output_not_zip(capture: Path, key: Path, pub: Path) -> list[str]:
    _good_capture(capture, _public(pub))
    return ["-o", str(capture.with_name("out.tar"))]


@bad_case("not a session-log private key: not base64")
def key_file_not_a_key(capture: Path, key: Path, pub: Path) -> list[str]:
    _good_capture(capture, _public(pub))
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    return []


@bad_case("capture: No such file or directory")
def missing_capture(capture: Path, key: Path, pub: Path) -> list[str]:
    return []


@pytest.mark.parametrize(
    ("command", "case"),
    [("decrypt", case) for case in sorted(BAD_CASES)]
    + [("show", case) for case in sorted(BAD_CASES) if case != "output_not_zip"],  # show takes no -o
)
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(
    tmp_path: Path, run: Run, keys: tuple[Path, Path], command: str, case: str
) -> None:
    make, problem = BAD_CASES[case]
    work = tmp_path / "work"
    work.mkdir()
    key, pub = keys
    capture = work / "capture"
    extra = make(capture, key, pub)
    if "-k" not in extra:
        extra += ["-k", str(key)]
    before = sorted(os.listdir(work))
    code, _out, err = run(command, "-c", capture, *extra)
    assert code == 2
    assert problem in _one_error_line(err)
    assert sorted(os.listdir(work)) == before  # no ZIP, no temporary file


def test_failed_decrypt_keeps_an_existing_output(tmp_path: Path, run: Run, keys: tuple[Path, Path]) -> None:
    key, pub = keys
    capture = tmp_path / "c"
    offsets = _good_capture(capture, _public(pub))
    out = tmp_path / "c.zip"
    assert run("decrypt", "-c", capture, "-k", key, "-o", out)[0] == 0
    good = out.read_bytes()
    _mutate(capture, offsets["block1"] + 5, b"\x00\x00")
    code, _, err = run("decrypt", "--input", capture, "-k", key, "-o", out)  # the old long name still works
    assert code == 2 and "block 1" in _one_error_line(err)
    assert out.read_bytes() == good
    assert sorted(os.listdir(tmp_path)) == ["c", "c.zip", "keys"]


def test_real_process_bad_input_exit_code_and_single_line(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    key, _pub = keys
    capture = tmp_path / "c"
    _good_capture(capture, X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
    done = _cli("decrypt", "-c", capture, "-k", key)
    assert done.returncode == 2
    assert done.stderr.decode().count("\n") == 1 and b"does not match" in done.stderr
    assert sorted(os.listdir(tmp_path)) == ["c", "keys"]


def test_encrypt_refuses_to_overwrite_and_checks_its_input(tmp_path: Path, run: Run, keys: tuple[Path, Path]) -> None:
    _, pub = keys
    out = tmp_path / "cap"
    out.write_bytes(b"keep")
    spec = _spec(tmp_path, "s", {"started_at": 1, "packets": []})
    code, _, err = run("encrypt", "-s", spec, "-k", pub, "-o", out)
    assert code == 2 and "already exists" in _one_error_line(err) and out.read_bytes() == b"keep"
    bad = _spec(tmp_path, "bad", {"started_at": 1, "packets": [{"source": "nobody", "elapsed_us": 0, "text": ""}]})
    code, _, err = run("encrypt", "--input", bad, "-k", pub, "-o", tmp_path / "new")
    assert code == 2 and 'packets[0].source must be "client" or "server"' in _one_error_line(err)
    assert not (tmp_path / "new").exists()


def test_cli_module_imports_no_crypto_or_rich_at_startup() -> None:
    code = (
        "import sys, sshd_setup.sessionlog.cli;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pyhpke', 'cryptography', 'rich')"
        " or m.startswith('sshd_setup.sessionlog.')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['sshd_setup.sessionlog.cli']"
