"""Reading inventory and vars files: regular files only, bounded, UTF-8, YAML without duplicate keys."""

from __future__ import annotations

import os
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml

from sshd_setup.errors import InputError
from sshd_setup.inputfile import MAX_INPUT_BYTES, NotReadable, read_bounded

MAX_BYTES = MAX_INPUT_BYTES


def read_text(path: Path) -> str:
    """A regular file of at most 16 MiB, read without blocking (sshd_setup.inputfile), decoded as UTF-8."""
    try:
        data = read_bounded(path, MAX_BYTES)
    except FileNotFoundError:
        raise InputError(str(path), "no such file") from None
    except NotReadable as exc:
        raise InputError(str(path), str(exc)) from None
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
