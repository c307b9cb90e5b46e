"""The analysis context every check reads (the tree before and after the plan), and shared helpers."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field

from sshd_setup.core.blocks import block_spans
from sshd_setup.core.config import ConfigFile
from sshd_setup.core.desired import DEFAULT_SSHD_CONFIG, Desired
from sshd_setup.core.facts import HostFacts
from sshd_setup.core.finding import Finding, Severity
from sshd_setup.core.openssh import CANONICAL, YES_NO_KEYWORDS, apc_last_wins
from sshd_setup.core.placed import Placed
from sshd_setup.core.plan import VENDOR_SSHD_CONFIG, Plan
from sshd_setup.core.sshkeys import InvalidKey, PublicKey, parse_key_file, parse_public_key
from sshd_setup.core.tree import ConfigTree, SnapshotEntry, SnapshotSource, load_tree

ERROR, WARNING, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO


@dataclass
class Context:
    desired: Desired | None
    facts: HostFacts
    plan: Plan | None
    main: str
    """The main file sshd will read after the change (the planned one)."""
    before: ConfigTree
    """The tree as sshd reads it now (on openSUSE without /etc/ssh/sshd_config: the vendor file)."""
    after: ConfigTree | None
    """The tree as the plan leaves it; None without a usable plan."""
    vendor: bool = False
    ours_before: frozenset[tuple[str, int]] = frozenset()
    ours_after: frozenset[tuple[str, int]] = frozenset()
    line_map: dict[int, int] = field(default_factory=dict)
    """Main file: planned line number → current line number, for lines outside managed blocks."""

    @property
    def tree(self) -> ConfigTree:
        """The tree sshd will read once the plan is applied (the current one without a plan)."""
        return self.after if self.after is not None else self.before

    @property
    def ours(self) -> frozenset[tuple[str, int]]:
        return self.ours_after if self.after is not None else self.ours_before

    def is_ours(self, d: Placed) -> bool:
        return (d.path, d.lineno) in self.ours

    def where(self, d: Placed) -> tuple[str, int]:
        """Location of a directive of self.tree, as the operator sees the files now."""
        if self.after is None or d.path != self.after.main_path:
            return d.path, d.lineno
        if (d.path, d.lineno) in self.ours_after:
            return d.path, d.lineno
        return d.path, self.line_map.get(d.lineno, d.lineno)

    def describe(self, d: Placed) -> str:
        path, line = self.where(d)
        suffix = " (sshd-setup's managed block, as planned)" if self.is_ours(d) else ""
        return f"{path}:{line}{suffix}"

    def mapped_users(self) -> list[str]:
        if self.desired is not None:
            return list(dict.fromkeys(m.user for m in self.desired.mappings))
        return list(_our_match_users(self.tree, self.ours))

    def groups_of(self, user: str) -> frozenset[str] | None:
        info = self.facts.users.get(user)
        return frozenset(info.groups) if info is not None and info.groups else None

    def read(self, path: str) -> str | None:
        entry = self.facts.files.get(path)
        return entry.text if entry is not None else None


def build_context(desired: Desired | None, facts: HostFacts, plan: Plan | None, main_path: str | None) -> Context:
    main = main_path or (desired.sshd_config if desired is not None else DEFAULT_SSHD_CONFIG)
    source = facts.source()
    before_main = main
    vendor = False
    if main not in facts.files and main == DEFAULT_SSHD_CONFIG and VENDOR_SSHD_CONFIG in facts.files:
        before_main, vendor = VENDOR_SSHD_CONFIG, True
    before = load_tree(source, before_main)
    after: ConfigTree | None = None
    if plan is not None and plan.files:
        overlay = dict(facts.files)
        for change in plan.files:
            overlay[change.path] = SnapshotEntry(None if change.remove else change.after)
        after = load_tree(SnapshotSource(overlay, set(facts.dirs) | set(plan.directories)), main)
    ctx = Context(desired, facts, plan, main, before, after, vendor)
    ctx.ours_before = _managed_locations(before)
    if after is not None:
        ctx.ours_after = _managed_locations(after)
        old, new = before.files.get(main), after.files.get(main)
        if old is not None and new is not None and not vendor:
            outside_old = _outside_lines(old)
            outside_new = _outside_lines(new)
            ctx.line_map = dict(zip(outside_new, outside_old, strict=False))
    return ctx


def _outside_lines(config: ConfigFile) -> list[int]:
    inside = {n for _, start, end in block_spans(config) for n in range(start, end + 1)}
    return [n for n in range(1, len(config.lines) + 1) if n not in inside]


def _managed_locations(tree: ConfigTree) -> frozenset[tuple[str, int]]:
    config = tree.files.get(tree.main_path)
    if config is None:
        return frozenset()
    return frozenset((tree.main_path, n) for _, start, end in block_spans(config) for n in range(start, end + 1))


def _our_match_users(tree: ConfigTree, ours: frozenset[tuple[str, int]]) -> list[str]:
    users: list[str] = []
    for d in tree.directives:
        if d.keyword == "match" and (d.path, d.lineno) in ours and d.conditions:
            users.extend(u for u in d.conditions[-1].users() if u not in users)
    return users


def _name(keyword: str) -> str:
    return CANONICAL.get(keyword, keyword)


def _value(d: Placed) -> str:
    value = d.line.value
    return value.lower() if d.keyword in YES_NO_KEYWORDS else value


def _same(a: Placed, b: Placed) -> bool:
    return _value(a) == _value(b)


LEGACY_NOTE = (
    " [on OpenSSH 8.7 to 9.3, where the LAST AuthorizedPrincipalsCommand read wins, and none after an "
    "AuthorizedKeysCommand counts (bz3574)]"
)
MODERN_NOTE = " [on OpenSSH before 8.7 or from 9.4 on, where the first AuthorizedPrincipalsCommand wins]"


def _modes(ctx: Context, keyword: str) -> list[tuple[bool, str]]:
    """(legacy, note) pairs to evaluate keyword under: one when the rule is known, both otherwise."""
    if keyword != "authorizedprincipalscommand":
        return [(False, "")]
    version = ctx.facts.sshd_version
    if version is not None:
        return [(apc_last_wins(version), "")]
    return [(True, LEGACY_NOTE), (False, MODERN_NOTE)]


def _merge_modes(results: list[tuple[list[Finding], str]]) -> list[Finding]:
    """Findings that hold under every rule once; the others once per rule, with that rule's note."""
    if len(results) == 1:
        return results[0][0]
    common = set(results[0][0]).intersection(*(set(found) for found, _ in results[1:]))
    merged = [f for f in results[0][0] if f in common]
    for found, note in results:
        merged.extend(dataclasses.replace(f, message=f.message + note) for f in found if f not in common)
    return merged


def _who(user: str | None) -> str:
    return "at start-up (every login)" if user is None else f"for logins as {user}"


def _keys_of(text: str | None) -> tuple[list[PublicKey], str]:
    """Keys in a TrustedUserCAKeys-style text, tolerant: unparseable lines are counted, not fatal."""
    if text is None:
        return [], ""
    try:
        return parse_key_file(text), ""
    except InvalidKey:
        keys: list[PublicKey] = []
        bad = 0
        for line in text.split("\n"):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            try:
                keys.append(parse_public_key(stripped))
            except InvalidKey:
                bad += 1
        return keys, f"{bad} line(s) that are not valid keys"


def _describe_keys(keys: Iterable[PublicKey]) -> str:
    return ", ".join(f"{k.key_type} {k.fingerprint}" + (f" ({k.comment})" if k.comment else "") for k in keys)


def _version_text(facts: HostFacts) -> str:
    return facts.sshd_version_text.split(",")[0].strip() or "an unknown version"
