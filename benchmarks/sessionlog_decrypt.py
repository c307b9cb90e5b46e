"""Benchmark (not a test): decrypt a generated session capture; report throughput and peak memory.

    .venv/bin/python benchmarks/sessionlog_decrypt.py [--size-mb 200] [--block-size 16384]

Writes a PTY capture of about --size-mb MB (real HPKE, server output in packets of 64 B .. 8 KiB, a
client keystroke every 16 packets) to a temporary directory, then:
  1. runs the real CLI (`python -m sshd_setup logs decrypt`) in a child process: wall time, MB/s of
     capture, and the child's peak RSS (ru_maxrss, interpreter included);
  2. decrypts again in this process under tracemalloc: peak Python allocations during the decrypt.
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import subprocess
import sys
import tempfile
import time
import tracemalloc
import zipfile
from pathlib import Path

from sshd_setup.sessionlog.archive import decrypt_to_zip
from sshd_setup.sessionlog.capture import CaptureWriter
from sshd_setup.sessionlog.crypto import generate_key_pair
from sshd_setup.sessionlog.metadata import ExitData, Pty
from sshd_setup.sessionlog.packets import CLIENT, SERVER

MB = 10**6


def generate(path: Path, public: bytes, size: int, block_size: int) -> int:
    rng = random.Random(1)
    pool = bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz0123456789 \r\n$#-_/.") for _ in range(1 << 20))
    packets = 0
    with path.open("wb") as f:
        writer = CaptureWriter(
            f, public, started_at=1700000000, pty=Pty("xterm-256color", 200, 50), block_size=block_size
        )
        elapsed = 0
        while writer.data_size < size:
            elapsed += rng.randrange(50, 20000)
            if packets % 16 == 0:
                writer.packet(CLIENT, elapsed, b"x")
            n = rng.randrange(64, 8192)
            start = rng.randrange(0, len(pool) - n)
            writer.packet(SERVER, elapsed, pool[start : start + n])
            packets += 1
        writer.finish(ExitData(1700000000 + elapsed // 10**6, 0))
    return packets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--block-size", type=int, default=16384)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sessionlog-bench-") as tmp:
        work = Path(tmp)
        private, public = generate_key_pair()
        key = work / "sshkey"
        key.write_bytes(base64.b64encode(private))
        capture = work / "capture.bin"

        t0 = time.perf_counter()
        packets = generate(capture, public, args.size_mb * MB, args.block_size)
        gen_s = time.perf_counter() - t0
        size = capture.stat().st_size
        print(f"capture: {size / MB:.1f} MB, {packets} server packets, {args.block_size}-byte blocks")
        print(f"generate (encrypt): {gen_s:.2f} s, {size / MB / gen_s:.1f} MB/s")

        out = work / "out.zip"
        cmd = [
            sys.executable,
            "-m",
            "sshd_setup",
            "logs",
            "decrypt",
            "-c",
            str(capture),
            "-k",
            str(key),
            "-o",
            str(out),
        ]
        t0 = time.perf_counter()
        child = subprocess.Popen(cmd, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(child.pid, 0)
        cli_s = time.perf_counter() - t0
        stderr = child.stderr.read().decode() if child.stderr else ""
        if status != 0:
            sys.exit(f"decrypt failed ({status}): {stderr}")
        with zipfile.ZipFile(out) as zf:
            members = {i.filename: i.file_size for i in zf.infolist()}
        print(f"decrypt via CLI: {cli_s:.2f} s, {size / MB / cli_s:.1f} MB/s of capture (process start included)")
        print(f"decrypt via CLI: peak RSS {usage.ru_maxrss / 1024:.1f} MiB (whole child process)")
        print(f"zip members: {members}")

        out.unlink()
        tracemalloc.start()
        t0 = time.perf_counter()
        decrypt_to_zip(capture, private, out)
        traced_s = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"decrypt in process under tracemalloc: {traced_s:.2f} s, peak Python allocations {peak / 2**20:.2f} MiB")


if __name__ == "__main__":
    main()
