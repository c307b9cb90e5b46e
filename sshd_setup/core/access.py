"""AllowUsers / DenyUsers / AllowGroups / DenyGroups: would sshd refuse a login as this user? (pure)

As sshd does (servconf.c, auth.c allowed_user): every active line of a keyword adds its words; when sshd
parses again for a connection, only Match blocks that apply are active, and a keyword they set REPLACES the
start-up list. Then: a DenyUsers word matching the user refuses; AllowUsers set and no word matching
refuses; then the same with the user's groups (DenyGroups, AllowGroups). A `USER@HOST` word, or a Match
block that depends on the client's address or host, makes the answer depend on where the login comes from.
"""

from __future__ import annotations

from dataclasses import dataclass

from sshd_setup.core.finding import Finding, Severity
from sshd_setup.core.matching import Connection, MatchCondition, match_pattern
from sshd_setup.core.openssh import ACCESS_KEYWORDS, CANONICAL
from sshd_setup.core.placed import Placed
from sshd_setup.core.tree import ConfigTree


@dataclass(frozen=True)
class AccessVerdict:
    refused_by: Placed | None = None
    """The line that refuses the login (for AllowUsers/AllowGroups: the first line of the list in force)."""
    why: str = ""
    depends: tuple[str, ...] = ()
    """Why it may be refused for some clients only (address-dependent words or Match blocks)."""
    lists: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(keyword, words) in force for this user, as `sshd -T -C user=...` prints them."""


def _applies(conditions: tuple[MatchCondition, ...], user: str, groups: frozenset[str] | None) -> str:
    """'yes' / 'no' / 'maybe' for a directive's Match conditions and logins as user."""
    unknown = False
    for condition in conditions:
        if condition.error:
            return "no"
        if condition.is_all:
            continue
        for criterion, patterns in condition.criteria:
            if criterion == "user":
                if not MatchCondition((("user", patterns),)).evaluate(Connection(user)):
                    return "no"
            elif criterion == "group":
                if groups is None:
                    unknown = True
                elif not MatchCondition((("group", patterns),)).evaluate(Connection(user, groups=groups)):
                    return "no"
            elif criterion == "invalid-user":
                return "no"
            else:
                unknown = True
    return "maybe" if unknown else "yes"


def lists_for(tree: ConfigTree, user: str, groups: frozenset[str] | None) -> tuple[dict[str, list[Placed]], list[str]]:
    """The lines of each access keyword in force for logins as user, and the Match blocks that may change them."""
    lists: dict[str, list[Placed]] = {}
    depends: list[str] = []
    for keyword in ACCESS_KEYWORDS:
        lines = tree.placed(keyword)
        startup = [d for d in lines if all(c.evaluate(None) for c in d.conditions)]
        matched = [d for d in lines if d.conditions and _applies(d.conditions, user, groups) == "yes"]
        maybe = [d for d in lines if d.conditions and _applies(d.conditions, user, groups) == "maybe"]
        depends.extend(f"{d.where} ({' '.join(str(c) for c in d.conditions)})" for d in maybe)
        lists[keyword] = matched or startup
    return lists, depends


def _user_word(word: str, user: str) -> str:
    """'yes' / 'no' / 'maybe' for one AllowUsers/DenyUsers word."""
    name, at, host = word.partition("@")
    if not match_pattern(user, name):
        return "no"
    return "yes" if not at or host == "*" else "maybe"


def verdict(tree: ConfigTree, user: str, groups: frozenset[str] | None) -> AccessVerdict:
    lists, depends = lists_for(tree, user, groups)
    words = {k: [(d, w) for d in lines for w in d.line.args] for k, lines in lists.items()}
    shown = tuple((k, tuple(w for _, w in words[k])) for k in ACCESS_KEYWORDS if words[k])
    maybe = list(depends)
    for d, word in words["denyusers"]:
        hit = _user_word(word, user)
        if hit == "yes":
            return AccessVerdict(d, f"DenyUsers {word} matches {user}", tuple(maybe), shown)
        if hit == "maybe":
            maybe.append(f"{d.where}: DenyUsers {word} (from some hosts)")
    if words["allowusers"]:
        hits = [_user_word(w, user) for _, w in words["allowusers"]]
        if "yes" not in hits:
            if "maybe" in hits:
                maybe.append(f"{lists['allowusers'][0].where}: AllowUsers admits {user} only from some hosts")
            else:
                first = lists["allowusers"][0]
                allowed = " ".join(w for _, w in words["allowusers"])
                return AccessVerdict(first, f"AllowUsers {allowed} does not name {user}", tuple(maybe), shown)
    for keyword in ("denygroups", "allowgroups"):
        if not words[keyword]:
            continue
        if groups is None:
            maybe.append(f"{lists[keyword][0].where}: {CANONICAL[keyword]} (the user's groups are not known)")
            continue
        member = [(d, w) for d, w in words[keyword] if any(match_pattern(g, w) for g in groups)]
        if keyword == "denygroups" and member:
            d, w = member[0]
            return AccessVerdict(d, f"DenyGroups {w} matches a group of {user}", tuple(maybe), shown)
        if keyword == "allowgroups" and not member:
            first = lists[keyword][0]
            allowed = " ".join(w for _, w in words[keyword])
            return AccessVerdict(first, f"AllowGroups {allowed}: {user} is in none of them", tuple(maybe), shown)
    return AccessVerdict(None, "", tuple(maybe), shown)


def access_findings(
    tree: ConfigTree, users: list[tuple[str, bool]], groups: dict[str, frozenset[str] | None]
) -> list[Finding]:
    """Findings for (user, is the connecting user) pairs, judged on the tree as the plan leaves it."""
    out: list[Finding] = []
    for user, connecting in users:
        found = verdict(tree, user, groups.get(user))
        role = "the user sshd-setup connects as" if connecting else "a mapped user"
        if found.refused_by is not None:
            d = found.refused_by
            effect = (
                "the lockout guard's new login would fail and every later run would be locked out"
                if connecting
                else "certificates for this user can never log in"
            )
            out.append(
                Finding(
                    "ACCESS-LOGIN-USER-DENIED" if connecting else "ACCESS-MAPPED-USER-DENIED",
                    Severity.ERROR,
                    f"sshd would refuse logins as {user} ({role}): {found.why} (`{d.line.raw.strip()[:160]}`); "
                    + effect,
                    f"add {user} to the list (or remove the line) before applying",
                    d.path,
                    d.lineno,
                )
            )
        elif found.depends:
            out.append(
                Finding(
                    "ACCESS-DEPENDS-ON-CLIENT",
                    Severity.WARNING,
                    f"logins as {user} ({role}) may be refused depending on where they come from: "
                    + "; ".join(found.depends[:3]),
                    "make sure the gateway's address is admitted",
                    tree.main_path,
                )
            )
    return out
