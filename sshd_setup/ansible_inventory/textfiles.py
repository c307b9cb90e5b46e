"""Reading inventory and vars files: regular files only, bounded, UTF-8, YAML without duplicate keys."""

from __future__ import annotations

import os
import stat
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml

from sshd_setup.errors import InputError

MAX_BYTES = 16 * 1024 * 1024


def read_text(path: Path) -> str:
    """Opened without blocking (a named pipe must not hang us), checked on the open file, read bounded."""
    limit = f"larger than {MAX_BYTES // (1024 * 1024)} MiB"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise InputError(str(path), "no such file") from None
    except OSError as exc:
        raise InputError(str(path), f"cannot read: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputError(str(path), "not a regular file")
        if info.st_size > MAX_BYTES:
            raise InputError(str(path), limit)
        try:
            data = handle.read(MAX_BYTES + 1)
        except OSError as exc:
            raise InputError(str(path), f"cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise InputError(str(path), limit)
    return decode(data, str(path))


def decode(data: bytes, where: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"{where}:{line}", f"not UTF-8 text (byte {data[exc.start]:#04x})") from None
    if "\x00" in text:
        raise InputError(where, "contains NUL bytes (a binary file?)")
    return text.removeprefix("\ufeff")


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate and unhashable keys instead of keeping the last or crashing."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, Hashable):
            raise yaml.constructor.ConstructorError(
                None, None, f"a {type(key).__name__} used as a key", key_node.start_mark
            )
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen[key] = loader.construct_object(value_node, deep=True)
    return seen


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_yaml(text: str, where: str) -> Any:
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"{where}:{mark.line + 1}" if mark is not None else where
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(at, f"invalid YAML: {problem}") from None
    except RecursionError:
        raise InputError(where, "invalid YAML: nested too deeply") from None


def load_yaml(path: Path) -> Any:
    return parse_yaml(read_text(path), str(path))


def is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)
