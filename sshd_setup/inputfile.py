"""Bounded reads of the files a user names (inventory, group_vars/host_vars, ca_keys_file, local trees).

Regular files only, up to a size limit: /dev/zero, a named pipe, a directory or a huge file is one clear
line (InputError, exit 2) at once, never a hang or an exhausted memory. The file is opened without
blocking (a FIFO does not wait for a writer) and checked on the open descriptor, so nothing can be
swapped in between the check and the read.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from sshd_setup.errors import InputError

MAX_INPUT_BYTES = 16 * 1024 * 1024
"""Inventories and vars files."""
MAX_KEY_FILE_BYTES = 1024 * 1024
"""Key files: a few lines each."""

_KINDS = (
    (stat.S_ISDIR, "is a directory"),
    (stat.S_ISFIFO, "is a named pipe"),
    (stat.S_ISCHR, "is a character device"),
    (stat.S_ISBLK, "is a block device"),
    (stat.S_ISSOCK, "is a socket"),
)


class NotReadable(ValueError):
    """Why a file cannot be read (one line, without the file's name)."""


def read_bounded(path: Path | str, limit: int = MAX_INPUT_BYTES, *, read: bool = True) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; NotReadable (or FileNotFoundError) otherwise.

    read=False: only check it (a private key file that paramiko reads later), return b''.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise NotReadable("is a directory") from None
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket, or a FIFO opened for writing elsewhere
            raise NotReadable("is not a regular file") from None
        raise NotReadable(f"cannot be read: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        for test, kind in _KINDS:
            if test(info.st_mode):
                raise NotReadable(f"{kind}, not a regular file")
        if not stat.S_ISREG(info.st_mode):
            raise NotReadable("is not a regular file")
        if info.st_size > limit:
            raise NotReadable(f"is larger than {_size(limit)} ({_size(info.st_size)})")
        if not read:
            return b""
        chunks: list[bytes] = []
        total = 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # grew while being read, or a /proc-like file that lies about its size
                raise NotReadable(f"is larger than {_size(limit)}")
        return b"".join(chunks)
    except OSError as exc:
        raise NotReadable(f"cannot be read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def read_input_text(path: Path | str, where: str, *, limit: int = MAX_INPUT_BYTES, errors: str = "strict") -> str:
    """UTF-8 text of a file the user named; InputError(where, '<path> ...') on any problem."""
    name = "" if str(path) in where else f"{path} "
    try:
        data = read_bounded(path, limit)
    except FileNotFoundError:
        raise InputError(where, f"{name}does not exist") from None
    except NotReadable as exc:
        raise InputError(where, f"{name}{exc}") from None
    try:
        return data.decode("utf-8", errors)
    except UnicodeDecodeError as exc:
        raise InputError(where, f"{name}is not UTF-8 text (byte {exc.start})") from None


def check_input_file(path: Path | str, where: str, *, limit: int = MAX_KEY_FILE_BYTES) -> None:
    """A file the user named that another library reads later: a regular file within the limit, when it exists."""
    try:
        read_bounded(path, limit, read=False)
    except FileNotFoundError:
        return
    except NotReadable as exc:
        raise InputError(where, f"{path} {exc}") from None


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n >= 1024 * 1024 else f"{n} bytes"
