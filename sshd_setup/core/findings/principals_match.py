"""Checks: settings that another line overrides, foreign Match blocks, Match blocks that swallow ours."""

from __future__ import annotations

from dataclasses import dataclass, field

from sshd_setup.core.finding import Finding, Severity
from sshd_setup.core.findings.context import (
    ERROR,
    INFO,
    WARNING,
    Context,
    _merge_modes,
    _modes,
    _name,
    _same,
    _who,
)
from sshd_setup.core.openssh import CERT_KEYWORDS, MATCH_KEYWORDS, PRINCIPAL_KEYWORDS, WATCHED_KEYWORDS
from sshd_setup.core.placed import MAX_QUOTE, Placed, quote
from sshd_setup.core.precedence import applies_at_startup, decide
from sshd_setup.core.tree import ConfigTree


def _check_changed_values(ctx: Context) -> list[Finding]:
    """Lines that used to decide a watched keyword and lose after the change; lines that never win."""
    out: list[Finding] = []
    for keyword in WATCHED_KEYWORDS:
        out.extend(
            _merge_modes([(_changed_values(ctx, keyword, legacy), note) for legacy, note in _modes(ctx, keyword)])
        )
    return out


def _changed_values(ctx: Context, keyword: str, legacy: bool) -> list[Finding]:
    out: list[Finding] = []
    reported: set[tuple[str, int]] = set()
    if ctx.after is not None and keyword != "trustedusercakeys":  # the foreign-CA check reports that one
        shadowed: dict[tuple[str, int], tuple[Placed, list[Placed], list[str | None]]] = {}
        for user in [None, *ctx.mapped_users()]:
            groups = ctx.groups_of(user) if user else None
            was = decide(ctx.before, (keyword,), user, groups, legacy=legacy).winner
            now = decide(ctx.after, (keyword,), user, groups, legacy=legacy).winner
            if was is None or now is None or (was.path, was.lineno) in ctx.ours_before or _same(was, now):
                continue
            entry = shadowed.setdefault((was.path, was.lineno), (was, [], []))
            entry[1].append(now)
            entry[2].append(user)
        for (path, line), (was, nows, users) in shadowed.items():
            reported.add((path, line))
            if len({(n.path, n.lineno) for n in nows}) == 1:
                instead = f"{quote(nows[0])} at {ctx.describe(nows[0])} wins instead"
            else:
                instead = "sshd-setup's managed values win instead: " + "; ".join(
                    f"{quote(n)} {_who(u)}" for n, u in zip(nows, users, strict=True)
                )
            out.append(
                Finding(
                    "SETTING-SHADOWED",
                    WARNING,
                    f"{quote(was)} decides {_name(keyword)} now ({_whom(users)}); after the change {instead}",
                    "check with the owner of that line that the change is intended",
                    path,
                    line,
                )
            )
    tree = ctx.tree
    current_ca = ctx.before.effective("trustedusercakeys")
    trusted_before = (current_ca.path, current_ca.lineno) if current_ca is not None and ctx.after is not None else None
    decision = decide(tree, (keyword,), None, legacy=legacy)
    winner, blocker = decision.winner, decision.blocker
    values = [d for d in tree.directives if d.keyword == keyword and applies_at_startup(d)]
    for d in values:
        if d is winner or ctx.is_ours(d):
            continue
        path, line = ctx.where(d)
        if (path, line) in reported or (winner is not None and _same(d, winner)):
            continue
        if keyword == "trustedusercakeys" and (path, line) == trusted_before:
            continue  # the foreign-CA check reports the CA file that stops being used
        index = tree.position(d)
        if blocker is not None and index > tree.position(blocker):
            reason = (
                f"it comes after {quote(blocker)} ({ctx.describe(blocker)}), and OpenSSH 8.7 to 9.3 ignore "
                "AuthorizedPrincipalsCommand lines read after an AuthorizedKeysCommand (bz3574)"
            )
        elif winner is None:
            continue
        elif index < tree.position(winner):
            reason = f"sshd uses {quote(winner)} from {ctx.describe(winner)}, read later (the last one wins here)"
        else:
            reason = f"sshd uses {quote(winner)} from {ctx.describe(winner)}, read earlier (the first value wins)"
        out.append(
            Finding(
                "SETTING-IGNORED",
                WARNING,
                f"{quote(d)} has no effect: {reason}",
                "remove the line or align it, so nobody is misled by it",
                path,
                line,
            )
        )
    return out


def _our_values(ctx: Context) -> tuple[dict[str, Placed], dict[str, dict[str, Placed]]]:
    """The managed block's values: global ones, and per mapped user."""
    ours = [d for d in ctx.tree.directives if ctx.is_ours(d) and d.keyword in CERT_KEYWORDS]
    ours_global: dict[str, Placed] = {}
    ours_user: dict[str, dict[str, Placed]] = {}
    for d in ours:
        if not d.conditions:
            ours_global.setdefault(d.keyword, d)
        else:
            for user in d.conditions[-1].users():
                ours_user.setdefault(user, {}).setdefault(d.keyword, d)
    return ours_global, ours_user


def _check_foreign_match(ctx: Context) -> list[Finding]:
    """Our values must decide for mapped users (and, in allow-all mode, for everyone)."""
    modes = _modes(ctx, "authorizedprincipalscommand")
    return _merge_modes([(_foreign_match(ctx, legacy), note) for legacy, note in modes])


def _relation(tree: ConfigTree, winner: Placed, mine: Placed, *, quoted: bool = False) -> str:
    name = quote(mine) if quoted else _name(mine.keyword)
    if tree.position(winner) < tree.position(mine):
        return f"is read before sshd-setup's {name}, and the first value wins"
    return f"is read after sshd-setup's {name}, and on OpenSSH 8.7 to 9.3 the last AuthorizedPrincipalsCommand wins"


def _block(tree: ConfigTree, d: Placed) -> str:
    """The Match line a directive sits under, as written (or as parsed, when it comes from an Include)."""
    config = tree.files.get(d.path)
    if d.match_lineno and config is not None and d.match_lineno <= len(config.lines):
        return "`" + config.lines[d.match_lineno - 1].raw.strip()[:MAX_QUOTE] + "`"
    return f"`{d.conditions[-1]}`" if d.conditions else "no Match block"


def _whom(users: list[str | None]) -> str:
    named = [u for u in users if u]
    parts = ["at start-up (every login)"] if None in users else []
    if named:
        parts.append("for logins as " + ", ".join(named))
    return "; ".join(parts)


@dataclass
class _Hit:
    """One finding about several users: message = prefix + who + suffix."""

    code: str
    severity: Severity
    path: str
    line: int
    prefix: str
    suffix: str
    hint: str
    users: list[str | None] = field(default_factory=list)

    def finding(self) -> Finding:
        return Finding(
            self.code, self.severity, self.prefix + _whom(self.users) + self.suffix, self.hint, self.path, self.line
        )


def _foreign_match(ctx: Context, legacy: bool) -> list[Finding]:
    tree = ctx.tree
    ours_global, ours_user = _our_values(ctx)
    hits: dict[tuple[str, int, str], _Hit] = {}

    def hit(
        keyword: str, d: Placed, user: str | None, code: str, severity: Severity, prefix: str, suffix: str, hint: str
    ) -> None:
        path, line = ctx.where(d)
        found = hits.setdefault((path, line, keyword), _Hit(code, severity, path, line, prefix, suffix, hint))
        if user not in found.users:
            found.users.append(user)

    users: list[str | None] = [None, *ctx.mapped_users()]
    for user in users:
        groups = ctx.groups_of(user) if user else None
        expected = dict(ours_global) if user is None else {**ours_global, **ours_user.get(user, {})}
        for keyword, mine in expected.items():
            decision = decide(tree, (keyword,), user, groups, legacy=legacy)
            winner = decision.winner
            for d, unknown in decision.maybes:
                if ctx.is_ours(d) or _same(d, mine):
                    continue
                hit(
                    keyword,
                    d,
                    user,
                    "FOREIGN-MATCH-OVERRIDES",
                    WARNING,
                    f"{quote(d)} under {_block(tree, d)} may apply ",
                    f" (depends on {', '.join(unknown)}); where it does, it decides instead of sshd-setup's "
                    f"{_name(keyword)}",
                    "narrow that Match block so it excludes the mapped users, or align its value",
                )
            if winner is None:
                blocker = decision.blocker
                if blocker is not None and not ctx.is_ours(blocker):
                    hit(
                        keyword,
                        blocker,
                        user,
                        "MANAGED-SETTING-IGNORED",
                        ERROR,
                        f"sshd-setup's {quote(mine)} has no effect ",
                        f": it comes after {quote(blocker)}, and OpenSSH 8.7 to 9.3 ignore "
                        "AuthorizedPrincipalsCommand lines read after an AuthorizedKeysCommand (bz3574)",
                        "move that AuthorizedKeysCommand below sshd-setup's blocks, or upgrade OpenSSH to 9.4+",
                    )
                continue
            if ctx.is_ours(winner) or _same(winner, mine):
                continue
            relation = _relation(tree, winner, mine, quoted=mine.is_global)
            if winner.conditions and not applies_at_startup(winner):
                hit(
                    keyword,
                    winner,
                    user,
                    "FOREIGN-MATCH-OVERRIDES",
                    ERROR,
                    f"{quote(winner)} under {_block(tree, winner)} applies ",
                    f" and {relation}, so certificate logins would not work as sshd-setup configured them",
                    "exclude the mapped users from that Match block (e.g. `Match User *,!johndoe`), or remove the line",
                )
            else:
                hit(
                    keyword,
                    winner,
                    None if mine.is_global else user,
                    "MANAGED-SETTING-IGNORED",
                    ERROR,
                    f"{quote(winner)} {relation}: the managed setting has no effect ",
                    "",
                    "remove that line (or make it agree); sshd-setup apply puts its block first and last",
                )
        if user is None:
            continue
        for keyword in ("authorizedprincipalsfile", "authorizedprincipalscommand"):
            if keyword in expected:
                continue
            other = decide(tree, (keyword,), user, groups, legacy=legacy).winner
            if other is not None and other.line.value.lower() != "none" and not ctx.is_ours(other):
                hit(
                    "also:" + keyword,
                    other,
                    user,
                    "PRINCIPALS-ALSO-FROM",
                    INFO,
                    "",
                    f", sshd also accepts the principals that {quote(other)} lists, besides sshd-setup's mapping",
                    "fine if that is another team's intended access; otherwise set it to none for these users",
                )
    out = [h.finding() for h in hits.values()]
    if any(k in ours_global for k in PRINCIPAL_KEYWORDS):  # allow-all: every user relies on the global values
        reported = {(path, line, keyword) for path, line, keyword in hits}
        for d in tree.directives:
            if d.keyword not in ours_global or not d.conditions or applies_at_startup(d) or ctx.is_ours(d):
                continue
            path, line = ctx.where(d)
            if (path, line, d.keyword) in reported or _same(d, ours_global[d.keyword]):
                continue
            out.append(
                Finding(
                    "FOREIGN-MATCH-OVERRIDES",
                    WARNING,
                    f"{quote(d)} under {_block(tree, d)} overrides allow-all's {quote(ours_global[d.keyword])} "
                    "for the connections it matches",
                    "fine if those users should not use certificates this way; otherwise remove or align it",
                    path,
                    line,
                )
            )
    return out


def _check_match_swallows(ctx: Context) -> list[Finding]:
    """Lines written as if global after a foreign Match line (cloud-init appends like this)."""
    out: list[Finding] = []
    ours = ctx.ours_before
    for path, config in ctx.before.files.items():
        block: tuple[int, str] | None = None
        indented_seen = False
        gap = False
        seen_directive = False
        for number, line in enumerate(config.lines, start=1):
            if line.keyword is None:
                if block is not None and seen_directive:
                    gap = True
                continue
            if line.error:
                continue
            if line.keyword == "match":
                block = None
                if (path, number) not in ours and line.args and line.args[0].lower() != "all":
                    block = (number, line.raw.strip())
                indented_seen = gap = seen_directive = False
                continue
            if block is None:
                continue
            indented = line.raw[:1] in (" ", "\t")
            if indented:
                indented_seen = True
            elif (indented_seen or gap) and line.keyword in MATCH_KEYWORDS:
                out.append(
                    Finding(
                        "MATCH-SWALLOWS-DIRECTIVE",
                        WARNING,
                        f"`{line.raw.strip()[:MAX_QUOTE]}` looks global but follows `{block[1][:MAX_QUOTE]}` "
                        f"(line {block[0]}): a Match block lasts until the next Match line or the end of the file, "
                        "so it applies only to matching connections",
                        "move it above the first Match line (or put `Match all` before it if it must stay here)",
                        path,
                        number,
                    )
                )
            seen_directive = True
    return out
