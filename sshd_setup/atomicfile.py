"""Files on this machine that appear whole or not at all: the one atomic writer (ca fetch --output, the
targets state file, render --out, decrypted session logs)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def atomic_file(out: Path, mode: int = 0o600) -> Iterator[BinaryIO]:
    """A new file beside `out` (created 0600, `mode` when done), fsynced and renamed to `out` when the block
    succeeds, the directory fsynced too; removed when it fails in any way (Ctrl-C included), so no partial
    file is ever left and an older `out` survives."""
    fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w+b") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(out.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def write_atomic(out: Path, text: str, mode: int = 0o644) -> None:
    """`text` (UTF-8, surrogates kept as the bytes they stand for) as `out`, atomically."""
    with atomic_file(out, mode) as handle:
        handle.write(text.encode("utf-8", "surrogateescape"))
