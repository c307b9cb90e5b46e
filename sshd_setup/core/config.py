"""Lossless sshd_config parsing.

A file is a tuple of Lines; each Line keeps its exact text (including its line ending), so serialising
an unchanged file gives back the same bytes. Tokenising follows sshd (servconf.c + misc.c argv_split):
keywords are case-insensitive, `kw value` and `kw=value` both work, quotes and backslash escapes are
honoured, `#` at the start of a token ends the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache

_TRAILING = " \t\r\n\f"
_LINE_SPLIT = re.compile(r"(?<=\n)")


class TokenError(ValueError):
    """A line sshd would reject while splitting it (e.g. an unterminated quote)."""


@dataclass(frozen=True)
class Line:
    raw: str
    """The exact text of the line, including its line ending (if any)."""
    keyword: str | None = None
    """Lower-cased keyword, or None for blank and comment lines."""
    args: tuple[str, ...] = ()
    """Arguments after sshd's splitting (quotes removed)."""
    rest: str = ""
    """The raw text after the keyword and separator (sshd keeps it verbatim for *Command keywords)."""
    error: str | None = None
    """Why sshd would refuse this line, if it would."""

    @property
    def is_directive(self) -> bool:
        return self.keyword is not None

    @property
    def ending(self) -> str:
        if self.raw.endswith("\r\n"):
            return "\r\n"
        return "\n" if self.raw.endswith("\n") else ""

    @property
    def value(self) -> str:
        """The value as `sshd -T` would show it for single-valued keywords."""
        if self.keyword in ("authorizedprincipalscommand", "authorizedkeyscommand", "forcecommand"):
            return self.rest
        return " ".join(self.args)


@dataclass(frozen=True)
class ConfigFile:
    path: str
    lines: tuple[Line, ...]

    def __hash__(self) -> int:  # hashed once: the analyses memoised on a file hash it at every call
        return self._hash

    @cached_property
    def _hash(self) -> int:
        return hash((self.path, self.lines))

    def text(self) -> str:
        return "".join(line.raw for line in self.lines)

    def directives(self) -> list[tuple[int, Line]]:
        """(1-based line number, line) for every directive line."""
        return [(number, line) for number, line in enumerate(self.lines, start=1) if line.is_directive]

    @cached_property
    def newline(self) -> str:
        """The file's dominant line ending, used for lines we add."""
        crlf = sum(1 for line in self.lines if line.ending == "\r\n")
        lf = sum(1 for line in self.lines if line.ending == "\n")
        return "\r\n" if crlf > lf else "\n"


def split_args(text: str) -> list[str]:
    """Split like OpenSSH's argv_split(s, ..., terminate_on_comment=1)."""
    args: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] in " \t":
            i += 1
            continue
        if text[i] == "#":
            break
        quote = ""
        token: list[str] = []
        while i < n:
            ch = text[i]
            if ch == "\\" and i + 1 < n and (text[i + 1] in "'\"\\" or (not quote and text[i + 1] == " ")):
                token.append(text[i + 1])
                i += 2
                continue
            if not quote and ch in " \t":
                break
            if not quote and ch in "'\"":
                quote = ch
            elif quote and ch == quote:
                quote = ""
            else:
                token.append(ch)
            i += 1
        if quote:
            raise TokenError("unterminated quote")
        args.append("".join(token))
    return args


def parse_line(raw: str) -> Line:
    body = raw.rstrip(_TRAILING)
    stripped = body.lstrip(" \t")
    if not stripped or stripped.startswith("#"):
        return Line(raw=raw)
    match = re.match(r"([^\s=]+)[ \t]*(?:=[ \t]*)?", stripped)
    if match is None:  # a line that starts with '=': sshd reports a missing keyword
        return Line(raw=raw, keyword="", error="line starts with '='")
    keyword = match.group(1).lower()
    rest = stripped[match.end() :]
    try:
        args = tuple(split_args(rest))
    except TokenError as exc:
        return Line(raw=raw, keyword=keyword, rest=rest, error=str(exc))
    return Line(raw=raw, keyword=keyword, args=args, rest=rest)


@lru_cache(maxsize=1024)  # a fleet's hosts mostly hold the same files; the result is immutable
def parse(text: str, path: str) -> ConfigFile:
    """Parse text into lines. sshd splits on '\\n' only; '\\r' is trailing whitespace to it."""
    pieces = [piece for piece in _LINE_SPLIT.split(text) if piece]
    return ConfigFile(path=path, lines=tuple(parse_line(piece) for piece in pieces))
