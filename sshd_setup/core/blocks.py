"""sshd-setup's managed blocks in sshd_config: the marker lines, and the two ways of reading them.

strip_managed_blocks() is strict (the planner refuses damaged markers); block_spans() is lenient (the
findings locate whatever well-formed blocks there are).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType

from sshd_setup.core.config import ConfigFile

BEGIN = "# BEGIN sshd-setup managed block"
END = "# END sshd-setup managed block"
TOP_NAME = "gateway CA"
MATCH_NAME = "principal mappings"
TOP_BEGIN, TOP_END = f"{BEGIN}: {TOP_NAME}", f"{END}: {TOP_NAME}"
MATCH_BEGIN, MATCH_END = f"{BEGIN}: {MATCH_NAME}", f"{END}: {MATCH_NAME}"
TEMPLATE_MARKERS = {"top_begin": TOP_BEGIN, "top_end": TOP_END, "match_begin": MATCH_BEGIN, "match_end": MATCH_END}
"""The marker lines as the templates (templates/sshd_config_*.j2) write them."""


@dataclass(frozen=True)
class ManagedBlocks:
    body: tuple[str, ...] = ()
    """The file's lines with our managed blocks taken out."""
    found: Mapping[str, str] = field(default_factory=dict)
    """Managed block name -> its current text (read-only: one result is shared by every caller)."""
    problem: str = ""
    problem_line: int = 0


@lru_cache(maxsize=1024)  # config files are immutable, and a fleet's hosts mostly share them
def strip_managed_blocks(config: ConfigFile) -> ManagedBlocks:
    """Take our managed blocks out of a file; report damaged markers instead of guessing."""
    body: list[str] = []
    found: dict[str, str] = {}
    current: str | None = None
    current_start = 0
    collected: list[str] = []
    for number, line in enumerate(config.lines, start=1):
        stripped = line.raw.strip()
        if stripped.startswith(BEGIN):
            if current is not None:
                return ManagedBlocks(problem="a managed block starts inside another one", problem_line=number)
            current = stripped[len(BEGIN) :].lstrip(": ").strip()
            current_start = number
            collected = [line.raw]
            continue
        if stripped.startswith(END):
            name = stripped[len(END) :].lstrip(": ").strip()
            if current is None:
                return ManagedBlocks(problem="a managed block ends without having begun", problem_line=number)
            if name != current:
                return ManagedBlocks(problem=f"block {current!r} ends as {name!r}", problem_line=number)
            if name in found:
                return ManagedBlocks(problem=f"managed block {name!r} appears twice", problem_line=current_start)
            found[name] = "".join([*collected, line.raw])
            current = None
            continue
        if current is not None:
            collected.append(line.raw)
        else:
            body.append(line.raw)
    if current is not None:
        return ManagedBlocks(problem=f"managed block {current!r} has no END marker", problem_line=current_start)
    return ManagedBlocks(tuple(body), MappingProxyType(found))


@lru_cache(maxsize=1024)  # config files are immutable, and a fleet's hosts mostly share them
def block_spans(config: ConfigFile) -> tuple[tuple[str, int, int], ...]:
    """(block name, BEGIN line, END line) of well-formed managed blocks."""
    spans: list[tuple[str, int, int]] = []
    current: tuple[str, int] | None = None
    for number, line in enumerate(config.lines, start=1):
        stripped = line.raw.strip()
        if stripped.startswith(BEGIN):
            current = (stripped[len(BEGIN) :].lstrip(": ").strip(), number)
        elif stripped.startswith(END) and current is not None:
            spans.append((current[0], current[1], number))
            current = None
    return tuple(spans)
