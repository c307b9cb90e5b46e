"""Checks: the sshd version and the algorithm lists a CA certificate needs."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sshd_setup.core.finding import Finding
from sshd_setup.core.findings.context import ERROR, Context, _keys_of, _name, _version_text, _who
from sshd_setup.core.matching import match_pattern, match_pattern_list
from sshd_setup.core.openssh import (
    ALL_KEY_ALGORITHMS,
    ALL_SIGNATURE_ALGORITHMS,
    CA_KEY_TYPE_VERSION,
    CERT_ALGORITHMS,
    CRYPTO_POLICY_FILE,
    DEFAULT_CA_SIGNATURE_ALGORITHMS,
    DEFAULT_PUBKEY_ALGORITHMS,
    MATCH_ALL_VERSION,
    MIN_VERSION,
    SIGNATURE_ALGORITHMS,
)
from sshd_setup.core.placed import quote
from sshd_setup.core.precedence import applies_at_startup, decide


def _check_version(ctx: Context) -> list[Finding]:
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
                f"{quote(d)}" + (" (planned by sshd-setup)" if ctx.is_ours(d) else ""),
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


def _crypto_policy_options(ctx: Context) -> dict[str, _AlgorithmDecision]:
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


def _ca_key_types(ctx: Context) -> list[str]:
    if ctx.desired is not None:
        return list(dict.fromkeys(k.key_type for k in ctx.desired.ca_keys))
    current = ctx.tree.effective("trustedusercakeys")
    if current is None:
        return []
    keys, _ = _keys_of(ctx.read(current.line.value))
    return list(dict.fromkeys(k.key_type for k in keys))


def _check_algorithms(ctx: Context) -> list[Finding]:
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
            d = decide(ctx.tree, keywords, user, ctx.groups_of(user) if user else None).winner
            decision: _AlgorithmDecision | None = None
            from_policy = policy.get(keywords[0])
            if d is not None and (d.conditions and not applies_at_startup(d)):
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
