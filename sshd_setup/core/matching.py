"""`Match` lines: parse their criteria and evaluate them for a connection, as sshd's match_cfg_line does."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from functools import lru_cache

CRITERIA = ("all", "user", "group", "host", "address", "localaddress", "localport", "rdomain", "invalid-user")


@dataclass(frozen=True)
class Connection:
    """A hypothetical connection, like `sshd -T -C user=U,host=H,addr=A`."""

    user: str
    host: str = "client.example"
    addr: str = "192.0.2.1"
    laddr: str = "192.0.2.254"
    lport: int = 22
    rdomain: str = ""
    groups: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class MatchCondition:
    criteria: tuple[tuple[str, str], ...]
    """(criterion, pattern list) pairs; ("all", "") for `Match all`."""
    error: str | None = None

    @property
    def is_all(self) -> bool:
        return self.criteria == (("all", ""),)

    def users(self) -> tuple[str, ...]:
        return tuple(patterns for criterion, patterns in self.criteria if criterion == "user")

    def evaluate(self, conn: Connection | None) -> bool:
        """True when the block applies; with conn None (sshd start-up) only `Match all` applies."""
        if self.error:
            return False
        if self.is_all:
            return True
        if conn is None:
            return False
        return all(_criterion_matches(criterion, patterns, conn) for criterion, patterns in self.criteria)

    def applies_to(self, user: str, groups: frozenset[str] | None) -> tuple[str, tuple[str, ...]]:
        """For logins as `user` (groups None: not known), every other criterion unknown: 'yes', 'no' or
        'maybe', with the criteria it depends on."""
        if self.error:
            return "no", ()
        if self.is_all:
            return "yes", ()
        unknown: list[str] = []
        for criterion, patterns in self.criteria:
            if criterion == "user":
                if not _criterion_matches(criterion, patterns, Connection(user)):
                    return "no", ()
            elif criterion == "group":
                if groups is None:
                    unknown.append(f"Group {patterns} (the user's groups are not known)")
                elif not _criterion_matches(criterion, patterns, Connection(user, groups=groups)):
                    return "no", ()
            elif criterion == "invalid-user":
                return "no", ()
            else:
                unknown.append(f"{criterion.capitalize()} {patterns}".strip())
        return ("maybe", tuple(unknown)) if unknown else ("yes", ())

    def __str__(self) -> str:
        return "Match " + " ".join(f"{c} {p}".strip() for c, p in self.criteria)


def parse_match(args: tuple[str, ...]) -> MatchCondition:
    words = list(args)
    # sshd also accepts `criterion=value` since 9.x; split it the same way.
    expanded: list[str] = []
    for word in words:
        if "=" in word and word.split("=", 1)[0].lower() in CRITERIA:
            expanded.extend(word.split("=", 1))
        else:
            expanded.append(word)
    if not expanded:
        return MatchCondition((), error="Match with no criteria")
    pairs: list[tuple[str, str]] = []
    i = 0
    while i < len(expanded):
        criterion = expanded[i].lower()
        if criterion == "all":
            if len(expanded) != 1:
                return MatchCondition((), error="'all' cannot be combined with other Match criteria")
            return MatchCondition((("all", ""),))
        if criterion not in CRITERIA:
            return MatchCondition((), error=f"unsupported Match attribute {expanded[i]!r}")
        if criterion == "invalid-user":
            pairs.append((criterion, ""))
            i += 1
            continue
        if i + 1 >= len(expanded):
            return MatchCondition((), error=f"Match {expanded[i]} needs a value")
        pairs.append((criterion, expanded[i + 1]))
        i += 2
    return MatchCondition(tuple(pairs))


@lru_cache(maxsize=4096)
def _glob_to_regex(pattern: str) -> re.Pattern[str]:
    parts = ["." if ch == "?" else ".*" if ch == "*" else re.escape(ch) for ch in pattern]
    return re.compile("".join(parts) + r"\Z", re.DOTALL)


def match_pattern(value: str, pattern: str) -> bool:
    return _glob_to_regex(pattern).match(value) is not None


def match_pattern_list(value: str, patterns: str, *, fold_case: bool = False) -> int:
    """OpenSSH match_pattern_list: -1 if a negated pattern matches, 1 if a positive one does, else 0."""
    if fold_case:
        value = value.lower()
    found = 0
    for raw in patterns.split(","):
        negated = raw.startswith("!")
        pattern = raw[1:] if negated else raw
        if fold_case:
            pattern = pattern.lower()
        if match_pattern(value, pattern):
            if negated:
                return -1
            found = 1
    return found


def match_address_list(addr: str, patterns: str) -> int:
    """OpenSSH addr_match_list: CIDR blocks or wildcard patterns, with `!` negation."""
    try:
        address = ipaddress.ip_address(addr)
    except ValueError:
        return 0
    found = 0
    for raw in patterns.split(","):
        negated = raw.startswith("!")
        pattern = raw[1:] if negated else raw
        if "/" in pattern:
            try:
                hit = address in ipaddress.ip_network(pattern, strict=False)
            except ValueError:
                return -1  # sshd treats a malformed CIDR as an error: no match
        else:
            hit = match_pattern(addr, pattern)
        if hit:
            if negated:
                return -1
            found = 1
    return found


def _criterion_matches(criterion: str, patterns: str, conn: Connection) -> bool:
    if criterion == "user":
        return match_pattern_list(conn.user, patterns) == 1
    if criterion == "group":
        return any(match_pattern_list(group, patterns) == 1 for group in conn.groups) and not any(
            match_pattern_list(group, patterns) == -1 for group in conn.groups
        )
    if criterion == "host":
        return match_pattern_list(conn.host, patterns, fold_case=True) == 1
    if criterion == "address":
        return match_address_list(conn.addr, patterns) == 1
    if criterion == "localaddress":
        return match_address_list(conn.laddr, patterns) == 1
    if criterion == "localport":
        return str(conn.lport) in patterns.split(",")
    if criterion == "rdomain":
        return match_pattern_list(conn.rdomain, patterns) == 1
    if criterion == "invalid-user":
        return False
    return False
