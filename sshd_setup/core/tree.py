"""The assembled configuration: the main file plus everything its Includes pull in, in sshd's order.

Include resolution works over an abstract FileSource, so one piece of code serves a local tree, a
`--root` directory and files gathered from a remote host. Effective values follow sshd's two passes:
at start-up only global lines (and `Match all`) apply, first value wins; for a connection sshd re-reads
the tree with only the matching Match blocks active (first wins among them) and those values override
the global ones.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from sshd_setup.core.config import ConfigFile, parse
from sshd_setup.core.matching import Connection, MatchCondition, parse_match
from sshd_setup.core.placed import Placed
from sshd_setup.core.precedence import decide

SSH_DIR = "/etc/ssh"
MAX_INCLUDE_DEPTH = 16  # sshd's SERVCONF_MAX_DEPTH
GLOB_CHARS = frozenset("*?[")


class SourceMissing(Exception):
    """The path does not exist."""


class SourceUnreadable(Exception):
    """The path exists but cannot be read (permissions, not a regular file, a directory, ...)."""


IS_A_DIRECTORY = "is a directory"


class FileSource(Protocol):
    def read(self, path: str) -> str:
        """Return the text of an absolute path; raise SourceMissing or SourceUnreadable."""
        ...

    def glob(self, pattern: str) -> list[str]:
        """Return the existing absolute paths matching a glob(3) pattern, sorted."""
        ...

    def is_dir(self, path: str) -> bool:
        """True when the absolute path is an existing directory."""
        ...


@dataclass(frozen=True)
class SnapshotEntry:
    text: str | None
    """None when the file exists but could not be read."""
    error: str = ""


@dataclass
class SnapshotSource:
    """A FileSource over files already read (gathered facts, tests): {path: entry}."""

    files: dict[str, SnapshotEntry] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)
    """Directories known to exist; parents of known files count too."""

    @classmethod
    def of(cls, texts: dict[str, str], dirs: set[str] | None = None) -> SnapshotSource:
        return cls({path: SnapshotEntry(text) for path, text in texts.items()}, set(dirs or ()))

    def is_dir(self, path: str) -> bool:
        return path in self.dirs or any(known.startswith(path.rstrip("/") + "/") for known in self.files)

    def read(self, path: str) -> str:
        entry = self.files.get(path)
        if entry is None and path in self.dirs:
            raise SourceUnreadable(IS_A_DIRECTORY)  # as reading it on the host would say
        if entry is None:
            raise SourceMissing(path)
        if entry.text is None:
            raise SourceUnreadable(entry.error or "unreadable")
        return entry.text

    def glob(self, pattern: str) -> list[str]:
        return sorted(path for path in {*self.files, *self.dirs} if glob_matches(pattern, path))


def glob_matches(pattern: str, path: str) -> bool:
    """glob(3) semantics per path component: wildcards never cross '/', leading dots need a dot."""
    pattern_parts = pattern.split("/")
    path_parts = path.split("/")
    if len(pattern_parts) != len(path_parts):
        return False
    for pat, part in zip(pattern_parts, path_parts, strict=True):
        if part.startswith(".") and not pat.startswith(".") and pat != part:
            return False
        if not fnmatch.fnmatchcase(part, pat):
            return False
    return True


def include_target(argument: str) -> str:
    """Relative Include arguments resolve under /etc/ssh."""
    return argument if argument.startswith("/") else posixpath.join(SSH_DIR, argument)


IncludeKind = Literal["", "no-match", "loop", "unreadable", "directory"]


@dataclass(frozen=True)
class IncludeUse:
    """One argument of one Include line and what it resolved to."""

    path: str
    lineno: int
    pattern: str
    matched: tuple[str, ...]
    conditions: tuple[MatchCondition, ...]
    problem: str = ""
    """'' when fine; otherwise why sshd would complain or silently ignore it (prose, for messages)."""
    kind: IncludeKind = ""
    """'' when fine, else the problem's kind (the last one met among its matches): checks read this."""


@dataclass
class ConfigTree:
    main_path: str
    files: dict[str, ConfigFile] = field(default_factory=dict)
    directives: list[Placed] = field(default_factory=list)
    includes: list[IncludeUse] = field(default_factory=list)
    errors: list[tuple[str, int, str]] = field(default_factory=list)
    """(path, line, message) for problems that make sshd refuse the configuration."""
    main_missing: bool = False
    """The main file does not exist (its error is the one at line 0 of main_path)."""
    _by_keyword: dict[str, list[Placed]] = field(default_factory=dict, init=False, repr=False, compare=False)
    _positions: dict[int, int] = field(default_factory=dict, init=False, repr=False, compare=False)
    _indexed: int = field(default=-1, init=False, repr=False, compare=False)

    def _index(self) -> dict[str, list[Placed]]:
        """keyword -> its directives in tree order; built once the tree is read (rebuilt if it grew)."""
        if self._indexed != len(self.directives):
            self._by_keyword, self._positions = {}, {}
            for position, d in enumerate(self.directives):
                self._by_keyword.setdefault(d.keyword, []).append(d)
                self._positions[id(d)] = position
            self._indexed = len(self.directives)
        return self._by_keyword

    def placed(self, keyword: str) -> list[Placed]:
        return list(self._index().get(keyword, ()))

    def placed_any(self, keywords: Collection[str]) -> list[Placed]:
        """The directives of any of keywords, in tree order."""
        index = self._index()
        found = [d for keyword in keywords for d in index.get(keyword, ())]
        if len(keywords) > 1:
            found.sort(key=self.position)
        return found

    def position(self, directive: Placed) -> int:
        """Where directive is in tree order (as directives.index, without the scan)."""
        self._index()
        position = self._positions.get(id(directive))
        return position if position is not None else self.directives.index(directive)

    def global_values(self, keyword: str) -> list[Placed]:
        """Directives for keyword that apply at start-up, in order (first wins for single-valued)."""
        return [d for d in self.placed(keyword) if all(c.evaluate(None) for c in d.conditions)]

    def effective(self, keyword: str, conn: Connection | None = None, *, legacy: bool = False) -> Placed | None:
        """The directive that decides keyword's value for conn (None = start-up), or None for default.

        core/precedence.py decides; legacy: OpenSSH 8.7 to 9.3, where the LAST AuthorizedPrincipalsCommand wins
        until an AuthorizedKeysCommand is read (bz3574).
        """
        return decide(self, (keyword,), conn, legacy=legacy).winner

    def effective_value(self, keyword: str, conn: Connection | None = None, default: str = "none") -> str:
        found = self.effective(keyword, conn)
        return found.line.value if found else default


def load_tree(source: FileSource, main_path: str = "/etc/ssh/sshd_config") -> ConfigTree:
    """Read the main file and every Include, in order. Problems are recorded, never raised."""
    tree = ConfigTree(main_path=main_path)
    try:
        text = source.read(main_path)
    except SourceMissing:
        tree.errors.append((main_path, 0, "main configuration file does not exist"))
        tree.main_missing = True
        return tree
    except SourceUnreadable as exc:
        tree.errors.append((main_path, 0, f"cannot read main configuration file: {exc}"))
        return tree
    _walk(tree, source, parse(text, main_path), (), 0, (main_path,))
    return tree


def _walk(
    tree: ConfigTree,
    source: FileSource,
    config: ConfigFile,
    outer: tuple[MatchCondition, ...],
    depth: int,
    stack: tuple[str, ...],
) -> None:
    tree.files.setdefault(config.path, config)
    own: MatchCondition | None = None
    own_lineno: int | None = None
    for lineno, line in config.directives():
        conditions = (*outer, own) if own is not None else outer
        if line.error:
            tree.errors.append((config.path, lineno, line.error))
            continue
        if line.keyword == "match":
            own = parse_match(line.args)
            own_lineno = lineno
            if own.error:
                tree.errors.append((config.path, lineno, own.error))
            tree.directives.append(Placed(config.path, lineno, line, (*outer, own), lineno))
            continue
        tree.directives.append(Placed(config.path, lineno, line, conditions, own_lineno))
        if line.keyword == "include":
            _include(tree, source, config.path, lineno, line.args, conditions, depth, stack)


def _include(
    tree: ConfigTree,
    source: FileSource,
    path: str,
    lineno: int,
    arguments: Iterable[str],
    conditions: tuple[MatchCondition, ...],
    depth: int,
    stack: tuple[str, ...],
) -> None:
    arguments = list(arguments)
    if not arguments:
        tree.errors.append((path, lineno, "Include with no argument"))
        return
    for argument in arguments:
        target = include_target(argument)
        if GLOB_CHARS & set(target):
            matched = source.glob(target)
        else:
            try:
                source.read(target)
                matched = [target]
            except SourceMissing:
                matched = []
            except SourceUnreadable:
                matched = [target]
        if not matched:
            tree.includes.append(IncludeUse(path, lineno, argument, (), conditions, "matches no file", "no-match"))
            continue
        use_problem = ""
        kind: IncludeKind = ""
        for included in matched:
            if depth + 1 > MAX_INCLUDE_DEPTH or included in stack:
                use_problem, kind = "Too many recursive configuration includes (an Include loop?)", "loop"
                tree.errors.append((path, lineno, use_problem))
                continue
            try:
                text = source.read(included)
            except (SourceMissing, SourceUnreadable) as exc:
                use_problem = f"cannot read {included}: {exc or 'unreadable'}"
                kind = "directory" if source.is_dir(included) else "unreadable"
                tree.errors.append((path, lineno, use_problem))
                continue
            _walk(tree, source, parse(text, included), conditions, depth + 1, (*stack, included))
        tree.includes.append(IncludeUse(path, lineno, argument, tuple(matched), conditions, use_problem, kind))
