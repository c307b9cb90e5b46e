"""`--limit`: Ansible's host patterns.

Names, groups, globs, `~regex` (matched from the start, as Ansible does), `a,b` or `a:b`, `!exclude`,
`&intersection`, subscripts `web[0]`, `web[-1]`, `web[0:2]` (inclusive, as in Ansible), `web[1:]`, and
`@file` (one pattern a line). A term that names nothing is an error with a did-you-mean.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Collection, Mapping
from pathlib import Path

from sshd_setup.ansible_inventory.textfiles import read_text
from sshd_setup.errors import InputError

_SUBSCRIPT = re.compile(r"^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$")
_TERM = re.compile(r"(?:[^\s:\[\]]|\[[^\]]*\])+")


def split_terms(limit: str) -> list[str]:
    if "," in limit:
        return [t.strip() for t in limit.split(",") if t.strip()]
    return _TERM.findall(limit)


def _expand_files(terms: list[str]) -> list[str]:
    expanded: list[str] = []
    for term in terms:
        if term.startswith("@"):
            file = Path(term[1:])
            if file.is_dir():
                raise InputError(f"--limit {term}", "a limit file must be a file, not a directory")
            expanded.extend(line.strip() for line in read_text(file).splitlines() if line.strip())
        else:
            expanded.append(term)
    return expanded


def select_hosts(limit: str | None, hosts: list[str], groups: Mapping[str, Collection[str]]) -> list[str]:
    """The hosts a pattern selects, in inventory order."""
    if limit is None or limit.strip() in ("", "all", "*"):
        return list(hosts)
    terms = _expand_files(split_terms(limit))
    if not terms:
        raise InputError("--limit", f"empty host pattern {limit!r}")
    positives = [t for t in terms if not t.startswith(("!", "&"))]
    selected: set[str] = set(hosts) if not positives else set()
    for term in positives:
        selected |= _term_hosts(term, hosts, groups)
    for term in terms:
        if term.startswith("&"):
            selected &= _term_hosts(term[1:], hosts, groups)
        elif term.startswith("!"):
            selected -= _term_hosts(term[1:], hosts, groups)
    if not selected:
        raise InputError("--limit", f"pattern {limit!r} matches no host in the inventory")
    return [host for host in hosts if host in selected]


def _ordered(members: Collection[str], hosts: list[str]) -> list[str]:
    if isinstance(members, list):
        return members
    index = {host: n for n, host in enumerate(hosts)}
    return sorted(members, key=lambda h: index.get(h, len(index)))


def _term_hosts(term: str, hosts: list[str], groups: Mapping[str, Collection[str]]) -> set[str]:
    term = term.strip()
    subscript = _SUBSCRIPT.match(term) if not term.startswith("~") else None
    base = subscript.group(1) if subscript else term
    matched = _matches(base, hosts, groups)
    if not matched:
        known = [*groups, *hosts]
        close = difflib.get_close_matches(base, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InputError("--limit", f"{base!r} names no host or group in the inventory{hint}")
    if subscript is None:
        return set(matched)
    index, start, _, end = subscript.group(2), subscript.group(3), subscript.group(4), subscript.group(5)
    try:
        if index is not None:
            return {matched[int(index)]}
    except IndexError:
        raise InputError("--limit", f"{term!r}: {base!r} has {len(matched)} host(s), no index {index}") from None
    first, last = int(start), int(end) if end else len(matched) - 1
    chosen = matched[first : last + 1]
    if not chosen:
        raise InputError("--limit", f"{term!r}: {base!r} has {len(matched)} host(s), none in [{start}:{end}]")
    return set(chosen)


def _matches(pattern: str, hosts: list[str], groups: Mapping[str, Collection[str]]) -> list[str]:
    """Ansible's _enumerate_matches: groups the pattern names, and hosts when it is a glob/regex or no group matched."""
    if pattern.startswith("~"):
        try:
            regex = re.compile(pattern[1:])
        except re.error as exc:
            raise InputError("--limit", f"bad regular expression {pattern[1:]!r}: {exc}") from None
    else:
        regex = re.compile(fnmatch.translate(pattern))
    found: dict[str, None] = {}  # ordered, without duplicates
    matching_groups = [name for name in groups if name == pattern or regex.match(name)]
    for name in matching_groups:
        found.update(dict.fromkeys(_ordered(groups[name], hosts)))
    if not matching_groups or pattern.startswith("~") or any(c in pattern for c in ".?*["):
        found.update(dict.fromkeys(h for h in hosts if h == pattern or regex.match(h)))
    return list(found)
