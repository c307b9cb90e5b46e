"""Decrypt a capture into a ZIP, streaming, and atomically: the ZIP is built under a temporary name
beside OUT and renamed only when complete, so a failure leaves no partial file (and an older OUT
intact). Members are stored uncompressed, as the vendor's tool does.

zipfile can stream only one member at a time, so the second member of each pair (term_times.txt, or
data_from_client.txt) goes to a spooled temporary file first: in memory while small, on disk beside
OUT when large.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import zipfile
from pathlib import Path

from sshd_setup.sessionlog.capture import CaptureReader
from sshd_setup.sessionlog.files import atomic_file
from sshd_setup.sessionlog.transcript import PTY_MEMBERS, RAW_MEMBERS, write_pty_transcript, write_raw_streams

SPOOL_IN_MEMORY = 8 << 20
_COPY_CHUNK = 1 << 20


def default_output(capture: Path) -> Path:
    return Path(f"{capture}-decrypted.zip")


def decrypt_to_zip(capture: Path, private_key: bytes, out: Path) -> tuple[str, ...]:
    """Write OUT; return the member names. Raises FormatError / OSError, leaving nothing behind."""
    with CaptureReader(capture, private_key) as reader, atomic_file(out) as zip_file:
        meta = reader.metadata
        members = PTY_MEMBERS if meta.pty is not None else RAW_MEMBERS
        # A member holds at most the capture's plaintext plus two header/end lines: zip64 only if needed.
        big = reader.size + (1 << 20) >= zipfile.ZIP64_LIMIT
        with (
            zipfile.ZipFile(zip_file, "w", zipfile.ZIP_STORED) as archive,
            tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY, dir=str(out.parent)) as spool,
        ):
            if meta.pty is not None:
                first, second = PTY_MEMBERS
                with archive.open(_member(first), "w", force_zip64=big) as data_out:
                    write_pty_transcript(meta, meta.pty, reader.fragments(), data_out, spool)
            else:
                second, first = RAW_MEMBERS
                with archive.open(_member(first), "w", force_zip64=big) as server_out:
                    write_raw_streams(reader.fragments(), spool, server_out)
            size = spool.tell()
            spool.seek(0)
            with archive.open(_member(second), "w", force_zip64=size >= zipfile.ZIP64_LIMIT) as out_member:
                shutil.copyfileobj(spool, out_member, _COPY_CHUNK)
    return members


def _member(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o100644 << 16  # regular file, rw-r--r--
    return info
