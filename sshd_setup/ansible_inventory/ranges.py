"""Ansible host patterns in inventories: `web[01:10]`, `db-[a:c]`, `[01:10:2]`, and a `:port` suffix."""

from __future__ import annotations

import ipaddress
import re
import string

from sshd_setup.errors import InputError

_RANGE = re.compile(r"\[([^\[\]]*)\]")
_MAX_HOSTS = 100_000


def split_port(pattern: str, where: str) -> tuple[str, int | None]:
    """`host:22`, `[v6]:22` and `web[1:3]:22` carry a port; a bare IPv6 address does not."""
    bracketed = re.fullmatch(r"\[([^\[\]]+)\]:(\d+)", pattern)
    if bracketed and _is_ipv6(bracketed.group(1)):
        return bracketed.group(1), _port(bracketed.group(2), where)
    outside = _RANGE.sub("", pattern)
    if outside.count(":") == 1:
        head, _, port = pattern.rpartition(":")
        if not port.isdigit():
            raise InputError(where, f"host pattern {pattern!r}: {port!r} after ':' is not a port")
        return head, _port(port, where)
    return pattern, None


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _port(text: str, where: str) -> int:
    port = int(text)
    if not 1 <= port <= 65535:
        raise InputError(where, f"port {port} is outside 1-65535")
    return port


def expand(pattern: str, where: str) -> list[str]:
    """Every host a pattern stands for, in order; a name without brackets stands for itself."""
    match = _RANGE.search(pattern)
    if match is None:
        if "[" in pattern or "]" in pattern:
            raise InputError(where, f"host pattern {pattern!r} has an unbalanced bracket")
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end() :]
    names: list[str] = []
    for item in _sequence(match.group(1), pattern, where):
        names.extend(expand(head + item + tail, where))
        if len(names) > _MAX_HOSTS:
            raise InputError(where, f"host pattern {pattern!r} stands for more than {_MAX_HOSTS} hosts")
    return names


def _sequence(spec: str, pattern: str, where: str) -> list[str]:
    bounds = spec.split(":")
    if len(bounds) not in (2, 3):
        raise InputError(where, f"host range [{spec}] in {pattern!r} must be [begin:end] or [begin:end:step]")
    begin, end = bounds[0] or "0", bounds[1]
    step_text = bounds[2] if len(bounds) == 3 else "1"
    if not end:
        raise InputError(where, f"host range [{spec}] in {pattern!r} has no end")
    if not step_text.isdigit() or int(step_text) == 0:
        raise InputError(where, f"host range [{spec}] in {pattern!r}: step must be a positive number")
    step = int(step_text)
    letters = string.ascii_letters
    if len(begin) == 1 and len(end) == 1 and begin in letters and end in letters:
        if letters.index(begin) > letters.index(end):
            raise InputError(where, f"host range [{spec}] in {pattern!r} must have begin <= end")
        return list(letters[letters.index(begin) : letters.index(end) + 1 : step])
    if not (begin.isdigit() and end.isdigit()):
        raise InputError(where, f"host range [{spec}] in {pattern!r} must be numbers or single letters")
    width = len(begin) if begin.startswith("0") and len(begin) > 1 else 0
    if width and len(end) != width:
        raise InputError(where, f"host range [{spec}] in {pattern!r}: begin and end must have the same width")
    if int(begin) > int(end):
        raise InputError(where, f"host range [{spec}] in {pattern!r} must have begin <= end")
    if (int(end) - int(begin)) // step > _MAX_HOSTS:
        raise InputError(where, f"host range [{spec}] in {pattern!r} stands for more than {_MAX_HOSTS} hosts")
    return [str(n).zfill(width) for n in range(int(begin), int(end) + 1, step)]


def expand_hosts(pattern: str, where: str) -> tuple[list[str], int | None]:
    name, port = split_port(pattern, where)
    return expand(name, where), port
