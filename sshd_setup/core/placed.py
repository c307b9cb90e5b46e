"""One directive of the assembled configuration tree: where it is and under which Match conditions it applies.

Its own module so that the precedence engine (core/precedence.py) and the tree walker (core/tree.py) both
use it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from sshd_setup.core.config import Line
from sshd_setup.core.matching import MatchCondition

MAX_QUOTE = 160
"""Longest line a finding quotes whole."""


@dataclass(frozen=True)
class Placed:
    """One directive of the assembled tree, where it is and under which Match conditions it applies."""

    path: str
    lineno: int
    line: Line
    conditions: tuple[MatchCondition, ...]
    """Match conditions that must all hold: enclosing Includes' blocks first, then the file's own."""
    match_lineno: int | None = None
    """Line (in `path`) of the Match block this directive sits in, if any."""

    @property
    def keyword(self) -> str:
        return self.line.keyword or ""

    @property
    def where(self) -> str:
        return f"{self.path}:{self.lineno}"

    @property
    def is_global(self) -> bool:
        return not self.conditions


def quote(d: Placed) -> str:
    """The directive's line as findings quote it: in backticks, cut at MAX_QUOTE characters."""
    text = d.line.raw.strip()
    return "`" + (text if len(text) <= MAX_QUOTE else text[: MAX_QUOTE - 1] + "…") + "`"
