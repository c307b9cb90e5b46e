"""Pre-flight findings: what in a host's configuration would make the CA setup fail, or break someone else.

find_problems() is pure. It reads the tree as it is (before) and as the plan would leave it (after: the
gathered files overlaid with the planned texts) and reports, with file and line, everything an operator
must see before anything changes: Include order, ports, settings that win or lose under "first value
wins", foreign CAs, foreign Match blocks, missing users, old sshd versions, algorithm lists, modes.

Locations refer to the files as they are now; a location inside our own managed block is the planned line.
Every check runs on its own: a check that fails on odd input becomes an INTERNAL-ERROR finding, the others
still run, and find_problems never raises.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sshd_setup.core.config import ConfigFile
from sshd_setup.core.desired import DEFAULT_SSHD_CONFIG, Desired
from sshd_setup.core.facts import FileMeta, HostFacts
from sshd_setup.core.finding import Finding, Severity
from sshd_setup.core.matching import Connection, MatchCondition, match_pattern, match_pattern_list
from sshd_setup.core.plan import BEGIN, END, TOP_NAME, VENDOR_SSHD_CONFIG, Plan
from sshd_setup.core.sshkeys import InvalidKey, PublicKey, parse_key_file, parse_public_key
from sshd_setup.core.tree import ConfigTree, Placed, SnapshotEntry, SnapshotSource, load_tree

ERROR, WARNING, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO

PRINCIPAL_KEYWORDS = ("authorizedprincipalsfile", "authorizedprincipalscommand", "authorizedprincipalscommanduser")
CERT_KEYWORDS = ("pubkeyauthentication", "trustedusercakeys", *PRINCIPAL_KEYWORDS)
WATCHED_KEYWORDS = (*CERT_KEYWORDS, "authorizedkeysfile")
CANONICAL = {
    "pubkeyauthentication": "PubkeyAuthentication",
    "trustedusercakeys": "TrustedUserCAKeys",
    "authorizedprincipalsfile": "AuthorizedPrincipalsFile",
    "authorizedprincipalscommand": "AuthorizedPrincipalsCommand",
    "authorizedprincipalscommanduser": "AuthorizedPrincipalsCommandUser",
    "authorizedkeysfile": "AuthorizedKeysFile",
    "pubkeyacceptedalgorithms": "PubkeyAcceptedAlgorithms",
    "casignaturealgorithms": "CASignatureAlgorithms",
    "authenticationmethods": "AuthenticationMethods",
    "include": "Include",
    "port": "Port",
    "listenaddress": "ListenAddress",
}
_YES_NO = frozenset({"pubkeyauthentication"})


def _words(text: str) -> list[str]:
    return text.replace(",", " ").split()


# Keywords sshd accepts inside a Match block (SSHCFG_ALL in servconf.c of OpenSSH 9.2); any other keyword
# in a block that is inactive at start-up is fatal: "Directive 'X' is not allowed within a Match block".
MATCH_KEYWORDS = frozenset(
    _words(
        """permitrootlogin loglevel logverbose rhostsrsaauthentication hostbasedauthentication
    hostbasedusesnamefrompacketonly hostbasedacceptedalgorithms hostbasedacceptedkeytypes rsaauthentication
    pubkeyauthentication pubkeyacceptedalgorithms pubkeyacceptedkeytypes pubkeyauthoptions kerberosauthentication
    gssapiauthentication passwordauthentication kbdinteractiveauthentication challengeresponseauthentication
    skeyauthentication ignorerhosts x11forwarding x11displayoffset x11uselocalhost permitemptypasswords rekeylimit
    allowtcpforwarding allowagentforwarding allowusers denyusers allowgroups denygroups gatewayports maxauthtries
    maxsessions banner clientaliveinterval clientalivecountmax authorizedkeysfile authorizedkeysfile2 acceptenv
    setenv permittunnel permittty permituserrc match permitopen permitlisten forcecommand chrootdirectory
    revokedkeys trustedusercakeys authorizedprincipalsfile include ipqos authorizedkeyscommand
    authorizedkeyscommanduser authorizedprincipalscommand authorizedprincipalscommanduser authenticationmethods
    streamlocalbindmask streamlocalbindunlink allowstreamlocalforwarding disableforwarding exposeauthinfo rdomain
    casignaturealgorithms requiredrsasize channeltimeout unusedconnectiontimeout"""
    )
)
# Keywords that became allowed inside Match later: (keyword, version).
MATCH_KEYWORDS_SINCE = {"subsystem": (9, 5)}
# Keywords that sshd refuses when it is older than (major, minor).
MIN_VERSION = {
    "trustedusercakeys": (5, 4),
    "authorizedprincipalsfile": (5, 6),
    "authorizedprincipalscommand": (6, 9),
    "authorizedprincipalscommanduser": (6, 9),
    "include": (7, 3),
    "casignaturealgorithms": (7, 9),
    "pubkeyacceptedalgorithms": (8, 5),
}
MATCH_ALL_VERSION = (6, 5)
# The OpenSSH release that first reads each CA key type (ssh-rsa: always). This replaces running ssh-keygen
# on the host: sshd -t does not read TrustedUserCAKeys, so a key type the host cannot parse would only show
# as certificate logins failing after the reload.
CA_KEY_TYPE_VERSION = {
    "ecdsa-sha2-nistp256": (5, 7),
    "ecdsa-sha2-nistp384": (5, 7),
    "ecdsa-sha2-nistp521": (5, 7),
    "ssh-ed25519": (6, 5),
    "sk-ssh-ed25519@openssh.com": (8, 2),
    "sk-ecdsa-sha2-nistp256@openssh.com": (8, 2),
}

# Algorithm lists of OpenSSH 9.x (`sshd -T` defaults, `ssh -Q key-sig`, `ssh -Q sig`).
DEFAULT_PUBKEY_ALGORITHMS = _words(
    "ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384-cert-v01@openssh.com,"
    "ecdsa-sha2-nistp521-cert-v01@openssh.com,sk-ssh-ed25519-cert-v01@openssh.com,"
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,"
    "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com,"
    "sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256"
)
DEFAULT_CA_SIGNATURE_ALGORITHMS = _words(
    "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com,"
    "sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256"
)
ALL_KEY_ALGORITHMS = _words(
    "ssh-ed25519 ssh-ed25519-cert-v01@openssh.com sk-ssh-ed25519@openssh.com sk-ssh-ed25519-cert-v01@openssh.com "
    "ecdsa-sha2-nistp256 ecdsa-sha2-nistp256-cert-v01@openssh.com ecdsa-sha2-nistp384 "
    "ecdsa-sha2-nistp384-cert-v01@openssh.com ecdsa-sha2-nistp521 ecdsa-sha2-nistp521-cert-v01@openssh.com "
    "sk-ecdsa-sha2-nistp256@openssh.com sk-ecdsa-sha2-nistp256-cert-v01@openssh.com "
    "webauthn-sk-ecdsa-sha2-nistp256@openssh.com ssh-dss ssh-dss-cert-v01@openssh.com ssh-rsa "
    "ssh-rsa-cert-v01@openssh.com rsa-sha2-256 rsa-sha2-256-cert-v01@openssh.com rsa-sha2-512 "
    "rsa-sha2-512-cert-v01@openssh.com"
)
ALL_SIGNATURE_ALGORITHMS = [name for name in ALL_KEY_ALGORITHMS if "-cert-" not in name]
# For a CA key type: the certificate algorithms the gateway's certificates use (any one is enough) and the
# signature algorithms the CA signs with.
CERT_ALGORITHMS = {
    "ssh-ed25519": ("ssh-ed25519-cert-v01@openssh.com",),
    "ecdsa-sha2-nistp256": ("ecdsa-sha2-nistp256-cert-v01@openssh.com",),
    "ecdsa-sha2-nistp384": ("ecdsa-sha2-nistp384-cert-v01@openssh.com",),
    "ecdsa-sha2-nistp521": ("ecdsa-sha2-nistp521-cert-v01@openssh.com",),
    "ssh-rsa": (
        "rsa-sha2-512-cert-v01@openssh.com",
        "rsa-sha2-256-cert-v01@openssh.com",
        "ssh-rsa-cert-v01@openssh.com",
    ),
    "sk-ssh-ed25519@openssh.com": ("sk-ssh-ed25519-cert-v01@openssh.com",),
    "sk-ecdsa-sha2-nistp256@openssh.com": ("sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",),
}
SIGNATURE_ALGORITHMS = {
    "ssh-ed25519": ("ssh-ed25519",),
    "ecdsa-sha2-nistp256": ("ecdsa-sha2-nistp256",),
    "ecdsa-sha2-nistp384": ("ecdsa-sha2-nistp384",),
    "ecdsa-sha2-nistp521": ("ecdsa-sha2-nistp521",),
    "ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256"),
    "sk-ssh-ed25519@openssh.com": ("sk-ssh-ed25519@openssh.com",),
    "sk-ecdsa-sha2-nistp256@openssh.com": (
        "sk-ecdsa-sha2-nistp256@openssh.com",
        "webauthn-sk-ecdsa-sha2-nistp256@openssh.com",
    ),
}
CRYPTO_POLICY_FILE = "/etc/crypto-policies/back-ends/opensshserver.config"
_ROOT_LOGIN_ALLOWED = frozenset({"yes", "prohibit-password", "without-password", "forced-commands-only"})
_MAX_QUOTE = 160


# ---------------------------------------------------------------- context


@dataclass
class _Context:
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


def _build_context(desired: Desired | None, facts: HostFacts, plan: Plan | None, main_path: str | None) -> _Context:
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
    ctx = _Context(desired, facts, plan, main, before, after, vendor)
    ctx.ours_before = _managed_locations(before)
    if after is not None:
        ctx.ours_after = _managed_locations(after)
        old, new = before.files.get(main), after.files.get(main)
        if old is not None and new is not None and not vendor:
            outside_old = _outside_lines(old)
            outside_new = _outside_lines(new)
            ctx.line_map = dict(zip(outside_new, outside_old, strict=False))
    return ctx


def _spans(config: ConfigFile) -> list[tuple[str, int, int]]:
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
    return spans


def _outside_lines(config: ConfigFile) -> list[int]:
    inside = {n for _, start, end in _spans(config) for n in range(start, end + 1)}
    return [n for n in range(1, len(config.lines) + 1) if n not in inside]


def _managed_locations(tree: ConfigTree) -> frozenset[tuple[str, int]]:
    config = tree.files.get(tree.main_path)
    if config is None:
        return frozenset()
    return frozenset((tree.main_path, n) for _, start, end in _spans(config) for n in range(start, end + 1))


def _our_match_users(tree: ConfigTree, ours: frozenset[tuple[str, int]]) -> list[str]:
    users: list[str] = []
    for d in tree.directives:
        if d.keyword == "match" and (d.path, d.lineno) in ours and d.conditions:
            users.extend(u for u in d.conditions[-1].users() if u not in users)
    return users


# ---------------------------------------------------------------- helpers


def _quote(d: Placed) -> str:
    text = d.line.raw.strip()
    return "`" + (text if len(text) <= _MAX_QUOTE else text[: _MAX_QUOTE - 1] + "…") + "`"


def _name(keyword: str) -> str:
    return CANONICAL.get(keyword, keyword)


def _value(d: Placed) -> str:
    value = d.line.value
    return value.lower() if d.keyword in _YES_NO else value


def _same(a: Placed, b: Placed) -> bool:
    return _value(a) == _value(b)


def _status(conditions: Iterable[MatchCondition], user: str, groups: frozenset[str] | None) -> tuple[str, list[str]]:
    """Does a directive under these conditions apply to logins as `user`? ('yes'|'no'|'maybe', unknowns)."""
    unknown: list[str] = []
    for condition in conditions:
        if condition.error:
            return "no", []
        if condition.is_all:
            continue
        for criterion, patterns in condition.criteria:
            if criterion == "user":
                if match_pattern_list(user, patterns) != 1:
                    return "no", []
            elif criterion == "group":
                if groups is None:
                    unknown.append(f"Group {patterns} (the user's groups are not known)")
                elif not MatchCondition((("group", patterns),)).evaluate(Connection(user, groups=groups)):
                    return "no", []
            elif criterion == "invalid-user":
                return "no", []
            else:
                unknown.append(f"{criterion.capitalize()} {patterns}".strip())
    return ("maybe", unknown) if unknown else ("yes", [])


def _applies_at_startup(d: Placed) -> bool:
    return all(c.evaluate(None) for c in d.conditions)


APC_FIRST_WINS = (9, 4)
"""OpenSSH < 9.4 (6.9 and later) checks the wrong variable before setting AuthorizedPrincipalsCommand
(servconf.c parse_command; bz3574, fixed in 9.4): every active line overwrites the previous one until an
AuthorizedKeysCommand has been set in the same pass; after that, AuthorizedPrincipalsCommand lines are ignored."""
LEGACY_NOTE = (
    " [on OpenSSH < 9.4, where the LAST AuthorizedPrincipalsCommand read wins, and none after an "
    "AuthorizedKeysCommand counts (bz3574)]"
)
MODERN_NOTE = " [on OpenSSH >= 9.4, where the first AuthorizedPrincipalsCommand wins]"


@dataclass(frozen=True)
class _Decision:
    winner: Placed | None
    """The directive that decides the value, or None for sshd's default."""
    maybes: tuple[tuple[Placed, tuple[str, ...]], ...] = ()
    """Match directives that would decide instead for some connections (the criteria they depend on)."""
    blocker: Placed | None = None
    """OpenSSH < 9.4: the AuthorizedKeysCommand after which AuthorizedPrincipalsCommand lines are ignored."""


def _pass(candidates: list[Placed], active: Callable[[Placed], tuple[str, list[str]]], legacy_apc: bool) -> _Decision:
    """One parsing pass of sshd over the candidates, with `active` saying which lines apply."""
    maybes: list[tuple[int, Placed, tuple[str, ...]]] = []
    if not legacy_apc:
        for index, d in enumerate(candidates):
            status, unknown = active(d)
            if status == "yes":
                return _Decision(d, tuple((m, u) for _, m, u in maybes))
            if status == "maybe":
                maybes.append((index, d, tuple(unknown)))
        return _Decision(None, tuple((m, u) for _, m, u in maybes))
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
    return _Decision(winner[1] if winner else None, tuple(later), blocker)


def _effective(
    tree: ConfigTree,
    keywords: Iterable[str],
    user: str | None,
    groups: frozenset[str] | None = None,
    *,
    legacy: bool = False,
) -> _Decision:
    """Which directive decides keywords' value at start-up (user None) or for logins as `user`.

    At start-up only global lines and `Match all` apply. For a user sshd parses again with only the
    matching Match blocks active; a value found there overrides the start-up one. First value wins, except
    AuthorizedPrincipalsCommand when legacy (OpenSSH < 9.4, see APC_FIRST_WINS).
    """
    wanted = set(keywords)
    legacy_apc = legacy and "authorizedprincipalscommand" in wanted
    if legacy_apc:
        wanted.add("authorizedkeyscommand")
    candidates = [d for d in tree.directives if d.keyword in wanted]

    def at_startup(d: Placed) -> tuple[str, list[str]]:
        return ("yes" if _applies_at_startup(d) else "no"), []

    startup = _pass(candidates, at_startup, legacy_apc)
    if user is None:
        return startup

    def for_user(d: Placed) -> tuple[str, list[str]]:
        return _status(d.conditions, user, groups) if d.conditions else ("no", [])

    connection = _pass(candidates, for_user, legacy_apc)
    if connection.winner is not None:
        return connection
    return _Decision(startup.winner, connection.maybes, connection.blocker or startup.blocker)


def _modes(ctx: _Context, keyword: str) -> list[tuple[bool, str]]:
    """(legacy, note) pairs to evaluate keyword under: one when the rule is known, both otherwise."""
    if keyword != "authorizedprincipalscommand":
        return [(False, "")]
    version = ctx.facts.sshd_version
    if version is not None:
        return [(version < APC_FIRST_WINS, "")]
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


# ---------------------------------------------------------------- checks


def _check_tree_errors(ctx: _Context) -> list[Finding]:
    out: list[Finding] = []
    include_problems = {(u.path, u.lineno) for u in ctx.before.includes if u.problem and u.problem != "matches no file"}
    for path, line, message in ctx.before.errors:
        if (path, line) in include_problems:
            continue  # reported by the Include check with its own code
        if line == 0 and "does not exist" in message:
            if ctx.vendor or (ctx.plan is not None and any(f.code == "MAIN-CONFIG-MISSING" for f in ctx.plan.findings)):
                continue
            out.append(
                Finding(
                    "MAIN-CONFIG-MISSING",
                    ERROR,
                    f"{path} does not exist",
                    "check the path (sshd_setup.sshd_config), or that openssh-server is installed",
                    path,
                )
            )
            continue
        out.append(
            Finding(
                "CONFIG-INVALID",
                ERROR,
                f"sshd would refuse this configuration: {message}",
                "fix this line first: sshd -t fails on it, and a reload with it would stop sshd",
                path,
                line,
            )
        )
    if ctx.after is not None:
        known = {(path, message) for path, _, message in ctx.before.errors}
        for path, line, message in ctx.after.errors:
            if (path, message) not in known and not (ctx.vendor and "does not exist" in message):
                out.append(
                    Finding(
                        "PLANNED-CONFIG-INVALID",
                        ERROR,
                        f"the planned configuration would be refused by sshd: {message}",
                        "this is a bug in the plan or an unusual tree: do not apply; report it with this output",
                        path,
                        line,
                    )
                )
    return out


def _check_global_only_in_match(ctx: _Context) -> list[Finding]:
    out: list[Finding] = []
    version = ctx.facts.sshd_version
    for d in ctx.before.directives:
        if d.keyword in MATCH_KEYWORDS or not d.conditions or _applies_at_startup(d):
            continue
        since = MATCH_KEYWORDS_SINCE.get(d.keyword)
        if since is not None and version is not None and version >= since:
            continue
        severity = WARNING if since is not None and version is None else ERROR
        out.append(
            Finding(
                "MATCH-GLOBAL-ONLY",
                severity,
                f"{_quote(d)} sits inside a Match block (line {d.match_lineno or '?'} or an enclosing Include), "
                f"where sshd refuses it: \"Directive '{d.line.raw.split()[0]}' is not allowed within a Match block\""
                + (f" (allowed there only from OpenSSH {since[0]}.{since[1]})" if since else ""),
                "move the line above the first Match line of its file",
                d.path,
                d.lineno,
            )
        )
    return out


def _check_includes(ctx: _Context) -> list[Finding]:
    out: list[Finding] = []
    watched = set(WATCHED_KEYWORDS)
    for use in ctx.before.includes:
        if use.problem == "matches no file":
            out.append(
                Finding(
                    "INCLUDE-NO-MATCH",
                    INFO,
                    f"Include {use.pattern} matches no file; sshd ignores it silently",
                    "fine if intended (an empty drop-in directory); otherwise check the path",
                    use.path,
                    use.lineno,
                )
            )
        elif "recursive" in use.problem:
            out.append(
                Finding(
                    "INCLUDE-LOOP",
                    ERROR,
                    f"Include {use.pattern}: {use.problem}; sshd refuses the configuration",
                    "break the loop: a file must not include itself, directly or through others",
                    use.path,
                    use.lineno,
                )
            )
        elif "is a directory" in use.problem:
            out.append(
                Finding(
                    "INCLUDE-IS-DIRECTORY",
                    WARNING,
                    f"Include {use.pattern} matches a directory ({use.problem.removeprefix('cannot read ')}); "
                    "sshd reads it as an empty file",
                    "use a glob such as DIR/*.conf to include the files inside it",
                    use.path,
                    use.lineno,
                )
            )
        elif use.problem:
            out.append(
                Finding(
                    "INCLUDE-UNREADABLE",
                    ERROR,
                    f"Include {use.pattern}: {use.problem}; sshd refuses a configuration it cannot read",
                    "fix the file's permissions or type (a regular file readable by root), or remove the Include",
                    use.path,
                    use.lineno,
                )
            )
        if use.conditions and not all(c.evaluate(None) for c in use.conditions) and use.matched:
            touching = [
                d
                for d in ctx.before.directives
                if d.path in use.matched
                and d.keyword in watched
                and d.conditions[: len(use.conditions)] == use.conditions
            ]
            if touching:
                names = sorted({_name(d.keyword) for d in touching})
                out.append(
                    Finding(
                        "INCLUDE-IN-MATCH",
                        WARNING,
                        f"Include {use.pattern} sits inside {use.conditions[-1]}: the {', '.join(names)} it sets "
                        f"({touching[0].path}:{touching[0].lineno}"
                        + (f" and {len(touching) - 1} more" if len(touching) > 1 else "")
                        + ") apply only to matching connections, and win over sshd-setup's values for them",
                        "move the Include above the first Match line, or make sure it does not set these keywords",
                        use.path,
                        use.lineno,
                    )
                )
    return out


def _check_block_position(ctx: _Context) -> list[Finding]:
    config = ctx.before.files.get(ctx.before.main_path)
    if config is None:
        return []
    out: list[Finding] = []
    for name, start, _end in _spans(config):
        if name != TOP_NAME:
            continue
        above = [d for d in ctx.before.directives if d.path == config.path and d.lineno < start]
        if above:
            fix = (
                "the plan moves the block back to the very top"
                if ctx.after is not None
                else "run sshd-setup apply to move it back to the very top"
            )
            out.append(
                Finding(
                    "BLOCK-NOT-FIRST",
                    WARNING,
                    f"{len(above)} directive(s) sit above sshd-setup's managed block (first: {_quote(above[0])} at "
                    f"line {above[0].lineno}); sshd reads them, and any file they Include, before the block, so "
                    "their values win over it",
                    fix,
                    config.path,
                    above[0].lineno,
                )
            )
    return out


def _check_changed_values(ctx: _Context) -> list[Finding]:
    """Lines that used to decide a watched keyword and lose after the change; lines that never win."""
    out: list[Finding] = []
    for keyword in WATCHED_KEYWORDS:
        out.extend(
            _merge_modes([(_changed_values(ctx, keyword, legacy), note) for legacy, note in _modes(ctx, keyword)])
        )
    return out


def _changed_values(ctx: _Context, keyword: str, legacy: bool) -> list[Finding]:
    out: list[Finding] = []
    reported: set[tuple[str, int]] = set()
    if ctx.after is not None and keyword != "trustedusercakeys":  # the foreign-CA check reports that one
        shadowed: dict[tuple[str, int], tuple[Placed, list[Placed], list[str | None]]] = {}
        for user in [None, *ctx.mapped_users()]:
            groups = ctx.groups_of(user) if user else None
            was = _effective(ctx.before, (keyword,), user, groups, legacy=legacy).winner
            now = _effective(ctx.after, (keyword,), user, groups, legacy=legacy).winner
            if was is None or now is None or (was.path, was.lineno) in ctx.ours_before or _same(was, now):
                continue
            entry = shadowed.setdefault((was.path, was.lineno), (was, [], []))
            entry[1].append(now)
            entry[2].append(user)
        for (path, line), (was, nows, users) in shadowed.items():
            reported.add((path, line))
            if len({(n.path, n.lineno) for n in nows}) == 1:
                instead = f"{_quote(nows[0])} at {ctx.describe(nows[0])} wins instead"
            else:
                instead = "sshd-setup's managed values win instead: " + "; ".join(
                    f"{_quote(n)} {_who(u)}" for n, u in zip(nows, users, strict=True)
                )
            out.append(
                Finding(
                    "SETTING-SHADOWED",
                    WARNING,
                    f"{_quote(was)} decides {_name(keyword)} now ({_whom(users)}); after the change {instead}",
                    "check with the owner of that line that the change is intended",
                    path,
                    line,
                )
            )
    tree = ctx.tree
    current_ca = ctx.before.effective("trustedusercakeys")
    trusted_before = (current_ca.path, current_ca.lineno) if current_ca is not None and ctx.after is not None else None
    decision = _effective(tree, (keyword,), None, legacy=legacy)
    winner, blocker = decision.winner, decision.blocker
    values = [d for d in tree.directives if d.keyword == keyword and _applies_at_startup(d)]
    for d in values:
        if d is winner or ctx.is_ours(d):
            continue
        path, line = ctx.where(d)
        if (path, line) in reported or (winner is not None and _same(d, winner)):
            continue
        if keyword == "trustedusercakeys" and (path, line) == trusted_before:
            continue  # the foreign-CA check reports the CA file that stops being used
        index = tree.directives.index(d)
        if blocker is not None and index > tree.directives.index(blocker):
            reason = (
                f"it comes after {_quote(blocker)} ({ctx.describe(blocker)}), and OpenSSH < 9.4 ignores "
                "AuthorizedPrincipalsCommand lines read after an AuthorizedKeysCommand (bz3574)"
            )
        elif winner is None:
            continue
        elif index < tree.directives.index(winner):
            reason = f"sshd uses {_quote(winner)} from {ctx.describe(winner)}, read later (the last one wins here)"
        else:
            reason = f"sshd uses {_quote(winner)} from {ctx.describe(winner)}, read earlier (the first value wins)"
        out.append(
            Finding(
                "SETTING-IGNORED",
                WARNING,
                f"{_quote(d)} has no effect: {reason}",
                "remove the line or align it, so nobody is misled by it",
                path,
                line,
            )
        )
    return out


def _our_values(ctx: _Context) -> tuple[dict[str, Placed], dict[str, dict[str, Placed]]]:
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


def _check_foreign_match(ctx: _Context) -> list[Finding]:
    """Our values must decide for mapped users (and, in allow-all mode, for everyone)."""
    modes = _modes(ctx, "authorizedprincipalscommand")
    return _merge_modes([(_foreign_match(ctx, legacy), note) for legacy, note in modes])


def _relation(tree: ConfigTree, winner: Placed, mine: Placed, *, quote: bool = False) -> str:
    name = _quote(mine) if quote else _name(mine.keyword)
    if tree.directives.index(winner) < tree.directives.index(mine):
        return f"is read before sshd-setup's {name}, and the first value wins"
    return f"is read after sshd-setup's {name}, and on OpenSSH < 9.4 the last AuthorizedPrincipalsCommand wins"


def _block(tree: ConfigTree, d: Placed) -> str:
    """The Match line a directive sits under, as written (or as parsed, when it comes from an Include)."""
    config = tree.files.get(d.path)
    if d.match_lineno and config is not None and d.match_lineno <= len(config.lines):
        return "`" + config.lines[d.match_lineno - 1].raw.strip()[:_MAX_QUOTE] + "`"
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


def _foreign_match(ctx: _Context, legacy: bool) -> list[Finding]:
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
            decision = _effective(tree, (keyword,), user, groups, legacy=legacy)
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
                    f"{_quote(d)} under {_block(tree, d)} may apply ",
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
                        f"sshd-setup's {_quote(mine)} has no effect ",
                        f": it comes after {_quote(blocker)}, and OpenSSH < 9.4 ignores AuthorizedPrincipalsCommand "
                        "lines read after an AuthorizedKeysCommand (bz3574)",
                        "move that AuthorizedKeysCommand below sshd-setup's blocks, or upgrade OpenSSH to 9.4+",
                    )
                continue
            if ctx.is_ours(winner) or _same(winner, mine):
                continue
            relation = _relation(tree, winner, mine, quote=mine.is_global)
            if winner.conditions and not _applies_at_startup(winner):
                hit(
                    keyword,
                    winner,
                    user,
                    "FOREIGN-MATCH-OVERRIDES",
                    ERROR,
                    f"{_quote(winner)} under {_block(tree, winner)} applies ",
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
                    f"{_quote(winner)} {relation}: the managed setting has no effect ",
                    "",
                    "remove that line (or make it agree); sshd-setup apply puts its block first and last",
                )
        if user is None:
            continue
        for keyword in ("authorizedprincipalsfile", "authorizedprincipalscommand"):
            if keyword in expected:
                continue
            other = _effective(tree, (keyword,), user, groups, legacy=legacy).winner
            if other is not None and other.line.value.lower() != "none" and not ctx.is_ours(other):
                hit(
                    "also:" + keyword,
                    other,
                    user,
                    "PRINCIPALS-ALSO-FROM",
                    INFO,
                    "",
                    f", sshd also accepts the principals that {_quote(other)} lists, besides sshd-setup's mapping",
                    "fine if that is another team's intended access; otherwise set it to none for these users",
                )
    out = [h.finding() for h in hits.values()]
    if any(k in ours_global for k in PRINCIPAL_KEYWORDS):  # allow-all: every user relies on the global values
        reported = {(path, line, keyword) for path, line, keyword in hits}
        for d in tree.directives:
            if d.keyword not in ours_global or not d.conditions or _applies_at_startup(d) or ctx.is_ours(d):
                continue
            path, line = ctx.where(d)
            if (path, line, d.keyword) in reported or _same(d, ours_global[d.keyword]):
                continue
            out.append(
                Finding(
                    "FOREIGN-MATCH-OVERRIDES",
                    WARNING,
                    f"{_quote(d)} under {_block(tree, d)} overrides allow-all's {_quote(ours_global[d.keyword])} "
                    "for the connections it matches",
                    "fine if those users should not use certificates this way; otherwise remove or align it",
                    path,
                    line,
                )
            )
    return out


def _check_match_swallows(ctx: _Context) -> list[Finding]:
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
                        f"`{line.raw.strip()[:_MAX_QUOTE]}` looks global but follows `{block[1][:_MAX_QUOTE]}` "
                        f"(line {block[0]}): a Match block lasts until the next Match line or the end of the file, "
                        "so it applies only to matching connections",
                        "move it above the first Match line (or put `Match all` before it if it must stay here)",
                        path,
                        number,
                    )
                )
            seen_directive = True
    return out


def _port_of_listen(argument: str) -> int | None:
    bracketed = re.fullmatch(r"\[(.*)\]:(\d+)", argument)
    if bracketed:
        return int(bracketed.group(2))
    if argument.count(":") == 1:
        port = argument.split(":")[1]
        return int(port) if port.isdigit() else None
    return None


def _port_directives(tree: ConfigTree) -> tuple[list[tuple[Placed, int]], list[tuple[Placed, int | None]]]:
    """(Port lines with their port, ListenAddress lines with their own port or None) at start-up."""
    ports = [(d, int(d.line.args[0])) for d in tree.global_values("port") if d.line.args and d.line.args[0].isdigit()]
    listens = [(d, _port_of_listen(d.line.args[0])) for d in tree.global_values("listenaddress") if d.line.args]
    return ports, listens


def listen_ports(tree: ConfigTree) -> set[int]:
    """The ports sshd binds at start-up: each ListenAddress's own port, else every Port (default 22)."""
    ports, listens = _port_directives(tree)
    port_set = {p for _, p in ports} or {22}
    if not listens:
        return port_set
    effective: set[int] = set()
    for _, port in listens:
        effective |= port_set if port is None else {port}
    return effective


def required_port(desired: Desired | None) -> int:
    """The port the gateway connects to: 22 for the SSH proxy, `sshd_setup.port` for Access for Infrastructure.

    The finding codes keep their names (PORT-NOT-22 ...); with another required port, "22" reads as it.
    """
    return desired.port if desired is not None else 22


def _check_ports(ctx: _Context) -> list[Finding]:
    want = required_port(ctx.desired)
    out: list[Finding] = []
    tree = ctx.before
    ports, listens = _port_directives(tree)
    explicit = [(d, port) for d, port in listens if port is not None]
    effective = listen_ports(tree)
    has_wanted = want in effective
    # Any other port is an error, even beside the gateway's: the gateway connects only to that one, so
    # the other port is a way in that bypasses it; the operator must say it is intended (--allow PORT-NOT-22).
    severity = ERROR
    tail = (
        f"; sshd also listens on {want} (the gateway's port), but this port bypasses the gateway"
        if has_wanted
        else f"; the gateway only connects to port {want}"
    )
    for d, port in ports:
        if port != want:
            out.append(
                Finding(
                    "PORT-NOT-22",
                    severity,
                    f"{_quote(d)}: sshd listens on port {port}{tail}",
                    (f"remove it (keep `Port {want}`)" if has_wanted else f"add `Port {want}` (and remove this one)")
                    + ", or pass --allow PORT-NOT-22 if the extra port is intended",
                    d.path,
                    d.lineno,
                )
            )
    for d, port in explicit:
        if port != want:
            out.append(
                Finding(
                    "LISTEN-PORT-NOT-22",
                    severity,
                    f"{_quote(d)} binds port {port}{tail}",
                    f"listen on port {want} on the address the gateway reaches, or pass --allow LISTEN-PORT-NOT-22",
                    d.path,
                    d.lineno,
                )
            )
    if not has_wanted:
        first = next((d for d, p in [*ports, *explicit] if p != want), None)
        out.append(
            Finding(
                "NO-PORT-22",
                ERROR,
                f"sshd would not listen on port {want} (effective ports: {', '.join(map(str, sorted(effective)))}); "
                f"the gateway connects to port {want} only, so certificate logins through it cannot reach this host",
                f"make sshd listen on port {want}",
                first.path if first else tree.main_path,
                first.lineno if first else 0,
            )
        )
    out.extend(_check_socket(ctx))
    return out


def _listen_port(entry: str) -> int | None:
    text = entry.strip()
    if "(" in text:
        text, _, kind = text.partition("(")
        if kind.strip(" )") != "Stream":
            return None
        text = text.strip()
    match = re.search(r"(?:^|:)(\d+)$", text)
    return int(match.group(1)) if match else None


def _check_socket(ctx: _Context) -> list[Finding]:
    facts = ctx.facts
    if not facts.socket_activated:
        return []
    unit = facts.socket_unit
    name = unit.name if unit is not None else "ssh.socket"
    out: list[Finding] = []
    dropin_streams: list[tuple[str, str]] = []
    for path in sorted(facts.socket_dropins):
        text = facts.socket_dropins[path]
        for raw in text.splitlines():
            key, sep, value = raw.strip().partition("=")
            if sep and key.strip() == "ListenStream":
                dropin_streams.append((path, value.strip()))
        if posixpath.basename(path) == "addresses.conf":
            out.append(
                Finding(
                    "SOCKET-ADDRESSES-DROPIN",
                    WARNING,
                    f"{name} has an addresses.conf drop-in: on this socket-activated host it, not sshd_config's "
                    "Port/ListenAddress, decides where sshd listens",
                    "keep port 22 in it; after changing it run `systemctl daemon-reload` and "
                    f"`systemctl restart {name}`",
                    path,
                )
            )
    entries = list(unit.listen) if unit is not None and unit.listen else []
    source_path = ""
    if not entries and dropin_streams:
        for path, value in dropin_streams:
            if not value:
                entries = []
            else:
                entries.append(value)
            source_path = path
    if not entries:
        return out
    ports = {p for p in (_listen_port(e) for e in entries) if p is not None}
    want = required_port(ctx.desired)
    others = sorted(p for p in ports if p != want)
    if want in ports and others:  # as `Port 2222` beside `Port 22` in sshd_config: a way around the gateway
        out.append(
            Finding(
                "SOCKET-PORT-NOT-22",
                ERROR,
                f"{name} also listens on port {', '.join(map(str, others))} beside {want}: on a socket-activated "
                f"host the socket decides, and this port bypasses the gateway (which connects to {want} only)",
                f"remove the extra ListenStream (then `systemctl daemon-reload` and `systemctl restart {name}`), "
                "or pass --allow SOCKET-PORT-NOT-22 if the extra port is intended",
                source_path or next((p for p, v in dropin_streams if v), ""),
            )
        )
    if want not in ports:
        source_path = source_path or next((p for p, v in dropin_streams if v), "")
        out.append(
            Finding(
                "SOCKET-NO-PORT-22",
                ERROR,
                f"{name} listens on {', '.join(entries)}, not on port {want}: on a socket-activated host the "
                f"socket decides, and the gateway connects to port {want} only",
                f"add ListenStream={want} (drop-in under /etc/systemd/system/{name}.d/), then "
                f"`systemctl daemon-reload` and `systemctl restart {name}`",
                source_path,
            )
        )
    return out


def _check_foreign_ca(ctx: _Context) -> list[Finding]:
    current = ctx.before.effective("trustedusercakeys")
    if current is None or (current.path, current.lineno) in ctx.ours_before:
        return []
    path = current.line.value
    desired = ctx.desired
    if path.lower() == "none" or (desired is not None and path == desired.ca_path):
        return []
    keys, bad = _keys_of(ctx.read(path))
    text = ctx.read(path)
    listed = _describe_keys(keys) if keys else ("no key" if text is not None else "keys that were not read")
    where = (current.path, current.lineno)
    extra = f" (and {bad})" if bad else ""
    if desired is None:
        return [
            Finding(
                "CA-FILE-IN-USE",
                INFO,
                f"sshd trusts the CA key(s) in {path}: {listed}{extra}",
                "an sshd-setup inventory for this host must say what happens to them: "
                "set sshd_setup.foreign_ca_keys: merge (keep their keys in our file) or replace",
                *where,
            )
        ]
    new = [k for k in keys if not any(k.same_key(d) for d in desired.ca_keys)]
    if desired.foreign_ca_keys == "refuse":
        return [
            Finding(
                "FOREIGN-CA-KEYS",
                ERROR,
                f"sshd already trusts the CA key(s) in {path} ({listed}{extra}); sshd-setup's TrustedUserCAKeys "
                f"{desired.ca_path} would be read first and win, so certificates from those CAs would stop working",
                "set sshd_setup.foreign_ca_keys: merge (keep their keys in our file) or replace",
                *where,
            )
        ]
    if desired.foreign_ca_keys == "merge":
        if text is None or bad:
            if ctx.plan is not None and any(f.code == "FOREIGN-CA-UNREADABLE" for f in ctx.plan.findings):
                return []
            reason = "was not read (missing, unreadable or not gathered)" if text is None else f"holds {bad}"
            return [
                Finding(
                    "FOREIGN-CA-NOT-READ",
                    ERROR,
                    f"foreign_ca_keys is merge, but {path} {reason}: its keys cannot be kept, and they would "
                    "stop being trusted",
                    f"make {path} readable and valid, or set foreign_ca_keys: replace knowingly",
                    *where,
                )
            ]
        kept = ctx.plan.kept_ca_keys if ctx.plan is not None else tuple(new)
        return [
            Finding(
                "FOREIGN-CA-MERGED",
                INFO,
                f"the CA key(s) of {path} stay trusted: copied into {desired.ca_path}: "
                + (_describe_keys(kept) or "none besides the desired keys"),
                "remove them from the old file's owners' list when they are no longer needed",
                *where,
            )
        ]
    return [
        Finding(
            "FOREIGN-CA-REPLACED",
            WARNING,
            f"foreign_ca_keys is replace: certificates signed by the CA key(s) in {path} stop being trusted: "
            + (_describe_keys(new) if new else listed if text is None else "none (all are desired keys)")
            + extra,
            "make sure nobody still logs in with those certificates",
            *where,
        )
    ]


def _check_dropped_ca_keys(ctx: _Context) -> list[Finding]:
    if ctx.desired is None or ctx.plan is None:
        return []
    change = next((c for c in ctx.plan.files if c.path == ctx.desired.ca_path), None)
    if change is None or change.before is None:
        return []
    before, _ = _keys_of(change.before)
    after, _ = _keys_of(change.after)
    dropped = [k for k in before if not any(k.same_key(a) for a in after)]
    if not dropped:
        return []
    managed = change.before.startswith("# Managed by sshd-setup")
    return [
        Finding(
            "CA-KEYS-DROPPED",
            INFO if managed else WARNING,
            f"{change.path} loses {len(dropped)} CA key(s), whose certificates stop being trusted: "
            + _describe_keys(dropped),
            "intended when the inventory removed them"
            if managed
            else "this file was not written by sshd-setup: add the keys to the inventory to keep them",
            change.path,
        )
    ]


def _check_users(ctx: _Context) -> list[Finding]:
    desired = ctx.desired
    if desired is None or not ctx.facts.complete:
        return []
    out: list[Finding] = []
    for mapping in desired.mappings:
        if mapping.user not in ctx.facts.users or ctx.facts.users[mapping.user] is not None:
            continue
        if desired.create_users:
            out.append(
                Finding(
                    "USER-TO-CREATE",
                    INFO,
                    f"user {mapping.user} does not exist; create_users is on, so it is to be created",
                    "",
                )
            )
        else:
            out.append(
                Finding(
                    "USER-MISSING",
                    ERROR,
                    f"user {mapping.user} does not exist on this host: certificate logins as {mapping.user} "
                    "would fail (the gateway does not create users)",
                    "create the user, fix the mapping, or set sshd_setup.create_users: true",
                )
            )
    return out


def _check_allow_all(ctx: _Context) -> list[Finding]:
    allow_all = ctx.desired.allow_all if ctx.desired is not None else False
    if ctx.desired is None:
        allow_all = any(
            ctx.is_ours(d) and not d.conditions and d.keyword == "authorizedprincipalscommand"
            for d in ctx.tree.directives
        )
    if not allow_all:
        return []
    root = _effective(ctx.tree, ("permitrootlogin",), "root").winner
    root_value = root.line.value.lower() if root is not None else "prohibit-password"
    root_note = (
        f", INCLUDING root (PermitRootLogin {root_value})"
        if root_value in _ROOT_LOGIN_ALLOWED
        else f" (not root: PermitRootLogin {root_value})"
    )
    return [
        Finding(
            "ALLOW-ALL-MODE",
            WARNING,
            f"SECURITY: allow-all mode: any certificate the CA signs may log in as ANY existing user{root_note}; "
            "whoever the gateway admits chooses the account",
            "prefer per-user mappings (principal / principals / any_principal); if you keep allow-all, set "
            "PermitRootLogin no and restrict who the gateway admits",
            ctx.main,
        )
    ]


def _check_version(ctx: _Context) -> list[Finding]:
    version = ctx.facts.sshd_version
    if version is None:
        return []
    out: list[Finding] = []
    seen: set[str] = set()
    have = _version_text(ctx.facts)
    for d in ctx.tree.directives:
        keyword = d.keyword
        if keyword == "pubkeyacceptedkeytypes":
            continue
        need = MIN_VERSION.get(keyword)
        label = _name(keyword)
        if keyword == "match" and d.conditions and d.conditions[-1].is_all:
            need, label = MATCH_ALL_VERSION, "Match all"
        if need is None or version >= need or label in seen:
            continue
        seen.add(label)
        path, line = ctx.where(d)
        out.append(
            Finding(
                "SSHD-TOO-OLD",
                ERROR,
                f"{label} needs OpenSSH {need[0]}.{need[1]} or newer; this host runs {have}, which refuses "
                f"{_quote(d)}" + (" (planned by sshd-setup)" if ctx.is_ours(d) else ""),
                "upgrade openssh-server, or use a mapping mode this version supports",
                path,
                line,
            )
        )
    desired = ctx.desired
    if desired is None:
        return out
    reader = ctx.tree.effective("trustedusercakeys")
    path, line = ctx.where(reader) if reader is not None else (desired.ca_path, 0)
    for key in desired.ca_keys:
        need = CA_KEY_TYPE_VERSION.get(key.key_type)
        if need is None or version >= need or key.key_type in seen:
            continue
        seen.add(key.key_type)
        out.append(
            Finding(
                "SSHD-TOO-OLD",
                ERROR,
                f"CA key type {key.key_type} needs OpenSSH {need[0]}.{need[1]} or newer; this host runs {have}, "
                f"which cannot read that key in {desired.ca_path}: no certificate would be accepted",
                "upgrade openssh-server, or have the gateway sign with an RSA or ECDSA CA key",
                path,
                line,
            )
        )
    return out


def _assemble(value: str, default: list[str], supported: list[str]) -> list[str] | None:
    """OpenSSH kex_assemble_names(): +append, -remove, ^prepend, or an explicit pattern list."""
    value = value.strip()
    if not value:
        return list(default)
    if value.startswith("-"):
        return [name for name in default if match_pattern_list(name, value[1:]) != 1]
    if value.startswith("+"):
        patterns = [*default, *value[1:].split(",")]
    elif value.startswith("^"):
        patterns = [*value[1:].split(","), *default]
    else:
        patterns = value.split(",")
    result: list[str] = []
    for pattern in patterns:
        if pattern.startswith("!"):
            return None  # sshd refuses negations here
        for name in supported:
            if match_pattern(name, pattern) and name not in result:
                result.append(name)
    return result


@dataclass(frozen=True)
class _AlgorithmDecision:
    value: str
    where: str
    path: str
    line: int


def _crypto_policy_options(ctx: _Context) -> dict[str, _AlgorithmDecision]:
    """RHEL 8 style: the unit passes $CRYPTO_POLICY (-oKey=Value) to sshd, ahead of every config line."""
    if CRYPTO_POLICY_FILE in ctx.tree.files:
        return {}
    text = ctx.read(CRYPTO_POLICY_FILE)
    if not text or "CRYPTO_POLICY=" not in text:
        return {}
    found: dict[str, _AlgorithmDecision] = {}
    for match in re.finditer(r"-o\s*([A-Za-z]+)\s*=\s*([^\s'\"]+)", text):
        keyword = match.group(1).lower()
        if keyword == "pubkeyacceptedkeytypes":
            keyword = "pubkeyacceptedalgorithms"
        found.setdefault(
            keyword,
            _AlgorithmDecision(
                match.group(2), f"{CRYPTO_POLICY_FILE} (sshd -o from the crypto policy)", CRYPTO_POLICY_FILE, 0
            ),
        )
    return found


def _ca_key_types(ctx: _Context) -> list[str]:
    if ctx.desired is not None:
        return list(dict.fromkeys(k.key_type for k in ctx.desired.ca_keys))
    current = ctx.tree.effective("trustedusercakeys")
    if current is None:
        return []
    keys, _ = _keys_of(ctx.read(current.line.value))
    return list(dict.fromkeys(k.key_type for k in keys))


def _check_algorithms(ctx: _Context) -> list[Finding]:
    key_types = _ca_key_types(ctx)
    if not key_types:
        return []
    policy = _crypto_policy_options(ctx)
    checks = (
        (
            "PUBKEY-ALGORITHM-EXCLUDED",
            ("pubkeyacceptedalgorithms", "pubkeyacceptedkeytypes"),
            DEFAULT_PUBKEY_ALGORITHMS,
            ALL_KEY_ALGORITHMS,
            CERT_ALGORITHMS,
            "certificates of type",
        ),
        (
            "CA-ALGORITHM-EXCLUDED",
            ("casignaturealgorithms",),
            DEFAULT_CA_SIGNATURE_ALGORITHMS,
            ALL_SIGNATURE_ALGORITHMS,
            SIGNATURE_ALGORITHMS,
            "CA signatures made with",
        ),
    )
    out: list[Finding] = []
    users: list[str | None] = [None, *ctx.mapped_users()]
    for code, keywords, default, supported, needed, what in checks:
        reported: set[tuple[str, int, str]] = set()
        for user in users:
            d = _effective(ctx.tree, keywords, user, ctx.groups_of(user) if user else None).winner
            decision: _AlgorithmDecision | None = None
            from_policy = policy.get(keywords[0])
            if d is not None and (d.conditions and not _applies_at_startup(d)):
                decision = _AlgorithmDecision(d.line.value, ctx.describe(d), *ctx.where(d))
            elif from_policy is not None:
                decision = from_policy
            elif d is not None:
                decision = _AlgorithmDecision(d.line.value, ctx.describe(d), *ctx.where(d))
            if decision is None:
                continue
            accepted = _assemble(decision.value, default, supported)
            if accepted is None:
                continue
            for key_type in key_types:
                wanted = needed.get(key_type, ())
                if not wanted or any(name in accepted for name in wanted):
                    continue
                key = (decision.path, decision.line, key_type)
                if key in reported:
                    continue
                reported.add(key)
                out.append(
                    Finding(
                        code,
                        ERROR,
                        f"{_name(keywords[0])} {decision.value} ({decision.where}) excludes {what} "
                        f"{' / '.join(wanted)} that the {key_type} CA key needs, so sshd would refuse the "
                        f"gateway's certificates {_who(user)}",
                        f"add them, e.g. `{_name(keywords[0])} +{wanted[0]}`, or change the crypto policy",
                        decision.path,
                        decision.line,
                    )
                )
    return out


def _check_auth_methods(ctx: _Context) -> list[Finding]:
    users: list[str | None] = list(ctx.mapped_users()) or [None]
    out: list[Finding] = []
    reported: set[tuple[str, int]] = set()
    for user in users:
        d = _effective(ctx.tree, ("authenticationmethods",), user, ctx.groups_of(user) if user else None).winner
        if d is None or d.line.value.lower() == "any" or not d.line.args:
            continue
        path, line = ctx.where(d)
        if (path, line) in reported:
            continue
        alternatives = [[m.split(":", 1)[0] for m in alt.split(",") if m] for alt in d.line.args]
        if any(alt == ["publickey"] for alt in alternatives):
            continue
        reported.add((path, line))
        if any("publickey" in alt for alt in alternatives):
            needs = sorted({m for alt in alternatives if "publickey" in alt for m in alt} - {"publickey"})
            out.append(
                Finding(
                    "AUTH-METHODS-NEED-MORE",
                    WARNING,
                    f"{_quote(d)}: a certificate alone does not log in {_who(user)}; sshd also asks for "
                    f"{' or '.join(needs)}",
                    "add `publickey` on its own as an alternative for these users if the gateway's certificate "
                    "should suffice",
                    path,
                    line,
                )
            )
        else:
            out.append(
                Finding(
                    "AUTH-METHODS-NO-PUBLICKEY",
                    ERROR,
                    f"{_quote(d)} never accepts publickey, so certificate logins fail {_who(user)}",
                    "add `publickey` as an alternative (space-separated) for these users",
                    path,
                    line,
                )
            )
    return out


def _final_meta(ctx: _Context, path: str) -> FileMeta | None:
    if ctx.plan is not None:
        change = next((c for c in ctx.plan.files if c.path == path), None)
        if change is not None:
            existing = ctx.facts.meta.get(path)
            mode = change.mode if change.mode is not None else (existing.mode if existing and existing.exists else None)
            if mode is None:
                return existing
            return FileMeta(path, True, change.owner, change.group, mode)
        if path in ctx.plan.directories or path in ctx.plan.fix_directories:
            return FileMeta(path, True, "root", "root", 0o755, True)
    return ctx.facts.meta.get(path)


def _check_permissions(ctx: _Context) -> list[Finding]:
    files: list[tuple[str, str, str | None]] = []  # (path, role, user allowed to own it)
    if ctx.desired is not None:
        files.append((ctx.desired.ca_path, "CA", None))
        files.extend((m.file, "principals", m.user) for m in ctx.desired.mappings if m.file)
    else:
        ca = ctx.tree.effective("trustedusercakeys")
        if ca is not None and ca.line.value.startswith("/") and "%" not in ca.line.value:
            files.append((ca.line.value, "CA", None))
    for user in [None, *ctx.mapped_users()]:
        d = _effective(ctx.tree, ("authorizedprincipalsfile",), user, ctx.groups_of(user) if user else None).winner
        if d is None or not d.line.args:
            continue
        for raw in d.line.args:
            value = raw.replace("%u", user) if user else raw
            if value.startswith("/") and "%" not in value and value not in [f for f, _, _ in files]:
                files.append((value, "principals", user))
    strict = _effective(ctx.tree, ("strictmodes",), None).winner
    strict_modes = strict is None or strict.line.value.lower() != "no"
    out: list[Finding] = []
    checked: set[tuple[str, str]] = set()
    for path, role, user in files:
        chain = [path]
        parent = posixpath.dirname(path)
        while parent not in ("", "/"):
            chain.append(parent)
            parent = posixpath.dirname(parent)
        for item in chain:
            if (item, role) in checked:
                continue
            meta = _final_meta(ctx, item)
            if meta is None or not meta.exists:
                continue
            problems: list[str] = []
            if meta.mode & 0o022:
                problems.append(f"mode {meta.mode & 0o7777:04o} is group/world writable")
            allowed = {"root", "0"} | ({user} if user and role == "principals" else set())
            if meta.owner and meta.owner not in allowed:
                problems.append(f"owned by {meta.owner}, not root")
            if not problems:
                continue
            kind = "directory" if item != path else f"{role} file"
            if role == "principals":
                effect = (
                    f"sshd refuses the principals file and certificate logins as {user or 'its users'} fail "
                    "(StrictModes)"
                    if strict_modes
                    else "StrictModes is off, so sshd uses it anyway: whoever can write it chooses who logs in"
                )
            else:
                effect = "whoever can write it can add a CA key and log in as anyone"
            out.append(
                Finding(
                    "UNSAFE-PERMISSIONS",
                    ERROR,
                    f"{kind} {item} (for {path}): {'; '.join(problems)}: {effect}",
                    f"chown root:root {item} && chmod go-w {item}",
                    item,
                )
            )
        checked.update((item, role) for item in chain)
    return out


def _check_vendor(ctx: _Context) -> list[Finding]:
    if not ctx.vendor:
        return []
    planned = ctx.after is not None
    return [
        Finding(
            "VENDOR-CONFIG-INCLUDED",
            INFO,
            f"{DEFAULT_SSHD_CONFIG} does not exist, so sshd reads the vendor file {VENDOR_SSHD_CONFIG} (openSUSE); "
            + (
                f"the plan creates {DEFAULT_SSHD_CONFIG} with the managed blocks and an Include of the vendor file, "
                "so its settings and drop-ins stay in effect"
                if planned
                else "creating the former would silently drop the vendor file; sshd-setup includes it"
            ),
            "",
            VENDOR_SSHD_CONFIG,
        )
    ]


def _check_pending(ctx: _Context) -> list[Finding]:
    """Files on disk that the running sshd has not loaded (core/pending.py)."""
    from sshd_setup.core.pending import pending_findings, pending_state
    from sshd_setup.core.service import pid_file

    if not ctx.facts.complete:
        return []
    return pending_findings(ctx.facts, ctx.before, pending_state(ctx.facts, ctx.before, pid_file(ctx.before)))


def _check_access(ctx: _Context) -> list[Finding]:
    """AllowUsers/DenyUsers/AllowGroups/DenyGroups for every mapped user and the connecting user (core/access.py)."""
    from sshd_setup.core.access import access_findings

    users = [(u, False) for u in ctx.mapped_users()]
    login = ctx.facts.login_user
    if login:
        users = [(u, False) for u, _ in users if u != login] + [(login, True)]
    return access_findings(ctx.tree, users, {u: ctx.groups_of(u) for u, _ in users})


def _check_start_options(ctx: _Context) -> list[Finding]:
    """-p / -o / -f in sshd's start options (core/startopts.py)."""
    from sshd_setup.core.startopts import running_options, start_findings

    return start_findings(running_options(ctx.facts), ctx.main) if ctx.facts.complete else []


def _check_listen_addresses(ctx: _Context) -> list[Finding]:
    """A ListenAddress the host does not have (core/hostchecks.py)."""
    from sshd_setup.core.hostchecks import listen_address_findings

    return listen_address_findings(ctx.tree, ctx.facts, ctx.where)


def _check_socket_daemon_reload(ctx: _Context) -> list[Finding]:
    """An ssh socket with NeedDaemonReload=yes (core/hostchecks.py)."""
    from sshd_setup.core.hostchecks import daemon_reload_findings

    return daemon_reload_findings(ctx.facts) if ctx.facts.complete else []


def _check_helpers(ctx: _Context) -> list[Finding]:
    """SshdSessionPath / SshdAuthPath that do not exist (core/hostchecks.py)."""
    from sshd_setup.core.hostchecks import helper_findings

    return helper_findings(ctx.tree, ctx.facts, ctx.where) if ctx.facts.complete else []


def _check_flow(ctx: _Context) -> list[Finding]:
    """Access for Infrastructure without principal mappings: sshd's default decides who a certificate is."""
    desired = ctx.desired
    if desired is None or desired.flow != "access-infrastructure" or desired.mappings or desired.allow_all:
        return []
    return [
        Finding(
            "PRINCIPAL-IS-USERNAME",
            INFO,
            "flow access-infrastructure with no principal mappings: sshd's default applies, so a certificate "
            "logs in as a Unix user only when it names that user as a principal (the gateway signs the username "
            "the Access policy allows: connection_rules.ssh.usernames, or the e-mail alias with allow_email_alias)",
            "make the policy's usernames the Unix users of this host, or map principals (sshd_setup.principals) "
            "when other names must log in",
            ctx.main,
        )
    ]


CHECKS: tuple[Callable[[_Context], list[Finding]], ...] = (
    _check_tree_errors,
    _check_global_only_in_match,
    _check_includes,
    _check_block_position,
    _check_changed_values,
    _check_foreign_match,
    _check_match_swallows,
    _check_ports,
    _check_flow,
    _check_foreign_ca,
    _check_dropped_ca_keys,
    _check_users,
    _check_allow_all,
    _check_version,
    _check_algorithms,
    _check_auth_methods,
    _check_permissions,
    _check_vendor,
    _check_pending,
    _check_access,
    _check_start_options,
    _check_listen_addresses,
    _check_helpers,
    _check_socket_daemon_reload,
)


def _internal(what: str, exc: BaseException) -> Finding:
    return Finding(
        "INTERNAL-ERROR",
        ERROR,
        f"{what} failed: {type(exc).__name__}: {str(exc)[:200]}",
        "this host's configuration could not be fully checked; please report this output",
    )


def find_problems(
    desired: Desired | None, facts: HostFacts, plan: Plan | None, *, main_path: str | None = None
) -> list[Finding]:
    """Everything an operator must know before this host changes. Never raises.

    desired None: lint without an inventory (checks that need the desired state are skipped). plan None:
    only the current tree is judged. main_path overrides the main sshd_config file (default: desired's).
    Findings the plan itself reported (plan.findings) are not repeated.
    """
    try:
        ctx = _build_context(desired, facts, plan, main_path)
    except Exception as exc:  # reported as a finding, never raised
        return [_internal("reading the configuration tree", exc)]
    findings: list[Finding] = []
    for check in CHECKS:
        try:
            findings.extend(check(ctx))
        except Exception as exc:  # one failing check must not hide the others
            findings.append(_internal(f"check {check.__name__.removeprefix('_check_')}", exc))
    unique: dict[tuple[str, str, int, str], Finding] = {}
    for finding in findings:
        unique.setdefault((finding.code, finding.path, finding.line, finding.message), finding)
    return list(unique.values())
