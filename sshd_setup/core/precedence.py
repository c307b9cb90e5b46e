"""The one precedence engine: which directive decides a keyword's value, as sshd's two parsing passes do.

sshd reads its configuration at start-up (global lines and `Match all`), then again for each connection
with only the matching Match blocks active; a value set in that pass overrides the start-up one. First
value wins, except AuthorizedPrincipalsCommand on OpenSSH 8.7 to 9.3 (bz3574, see openssh.APC_LAST_WINS).
Who asks: None (start-up), a concrete Connection (as `sshd -T -C`), or a user name whose other Match
criteria (host, address, ports; groups unless given) are unknown, which makes such lines 'maybe'.
ConfigTree.effective and every check in core/findings/ use decide().
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Protocol

from sshd_setup.core.matching import Connection, MatchCondition
from sshd_setup.core.placed import Placed


class Directives(Protocol):
    """What decide() reads of a tree (core/tree.py ConfigTree): its directives of some keywords, in order."""

    def placed_any(self, keywords: Collection[str]) -> list[Placed]: ...


def _status(conditions: Iterable[MatchCondition], user: str, groups: frozenset[str] | None) -> tuple[str, list[str]]:
    """Does a directive under these conditions apply to logins as `user`? ('yes'|'no'|'maybe', unknowns)."""
    unknown: list[str] = []
    for condition in conditions:
        status, missing = condition.applies_to(user, groups)
        if status == "no":
            return "no", []
        unknown.extend(missing)
    return ("maybe", unknown) if unknown else ("yes", [])


def applies_at_startup(d: Placed) -> bool:
    return all(c.evaluate(None) for c in d.conditions)


@dataclass(frozen=True)
class Decision:
    winner: Placed | None
    """The directive that decides the value, or None for sshd's default."""
    maybes: tuple[tuple[Placed, tuple[str, ...]], ...] = ()
    """Match directives that would decide instead for some connections (the criteria they depend on)."""
    blocker: Placed | None = None
    """OpenSSH 8.7 to 9.3: the AuthorizedKeysCommand after which AuthorizedPrincipalsCommand lines are ignored."""


def _pass(candidates: list[Placed], active: Callable[[Placed], tuple[str, list[str]]], legacy_apc: bool) -> Decision:
    """One parsing pass of sshd over the candidates, with `active` saying which lines apply."""
    maybes: list[tuple[int, Placed, tuple[str, ...]]] = []
    if not legacy_apc:
        for index, d in enumerate(candidates):
            status, unknown = active(d)
            if status == "yes":
                return Decision(d, tuple((m, u) for _, m, u in maybes))
            if status == "maybe":
                maybes.append((index, d, tuple(unknown)))
        return Decision(None, tuple((m, u) for _, m, u in maybes))
    winner: tuple[int, Placed] | None = None
    blocker: Placed | None = None
    for index, d in enumerate(candidates):
        status, unknown = active(d)
        if status == "no":
            continue
        if d.keyword == "authorizedkeyscommand":
            if status == "yes" and blocker is None:
                blocker = d
            continue
        if blocker is not None:
            continue
        if status == "yes":
            winner = (index, d)
        else:
            maybes.append((index, d, tuple(unknown)))
    later = [(m, u) for index, m, u in maybes if winner is None or index > winner[0]]
    return Decision(winner[1] if winner else None, tuple(later), blocker)


def decide(
    tree: Directives,
    keywords: Iterable[str],
    who: str | Connection | None,
    groups: frozenset[str] | None = None,
    *,
    legacy: bool = False,
) -> Decision:
    """Which directive decides keywords' value at start-up (who None), for a concrete connection, or for
    logins as the user named `who` (with `groups` when known).

    At start-up only global lines and `Match all` apply. For a connection sshd parses again with only the
    matching Match blocks active; a value found there overrides the start-up one. First value wins, except
    AuthorizedPrincipalsCommand when legacy (OpenSSH 8.7 to 9.3, see APC_LAST_WINS).
    """
    wanted = set(keywords)
    legacy_apc = legacy and "authorizedprincipalscommand" in wanted
    if legacy_apc:
        wanted.add("authorizedkeyscommand")
    candidates = tree.placed_any(wanted)

    def at_startup(d: Placed) -> tuple[str, list[str]]:
        return ("yes" if applies_at_startup(d) else "no"), []

    startup = _pass(candidates, at_startup, legacy_apc)
    if who is None:
        return startup
    conn, user = (who, "") if isinstance(who, Connection) else (None, who)

    def for_user(d: Placed) -> tuple[str, list[str]]:
        if not d.conditions:
            return "no", []
        if conn is not None:
            return ("yes" if all(c.evaluate(conn) for c in d.conditions) else "no"), []
        return _status(d.conditions, user, groups)

    connection = _pass(candidates, for_user, legacy_apc)
    if connection.winner is not None:
        return connection
    return Decision(startup.winner, connection.maybes, connection.blocker or startup.blocker)
