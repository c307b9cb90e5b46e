"""Checks: mapped users, allow-all, access lists, the principal flow."""

from __future__ import annotations

from sshd_setup.core.finding import Finding
from sshd_setup.core.findings.context import ERROR, INFO, WARNING, Context
from sshd_setup.core.openssh import ROOT_LOGIN_ALLOWED
from sshd_setup.core.precedence import decide


def _check_users(ctx: Context) -> list[Finding]:
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


def _check_allow_all(ctx: Context) -> list[Finding]:
    allow_all = ctx.desired.allow_all if ctx.desired is not None else False
    if ctx.desired is None:
        allow_all = any(
            ctx.is_ours(d) and not d.conditions and d.keyword == "authorizedprincipalscommand"
            for d in ctx.tree.directives
        )
    if not allow_all:
        return []
    root = decide(ctx.tree, ("permitrootlogin",), "root").winner
    root_value = root.line.value.lower() if root is not None else "prohibit-password"
    root_note = (
        f", INCLUDING root (PermitRootLogin {root_value})"
        if root_value in ROOT_LOGIN_ALLOWED
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


def _check_access(ctx: Context) -> list[Finding]:
    """AllowUsers/DenyUsers/AllowGroups/DenyGroups for every mapped user and the connecting user (core/access.py)."""
    from sshd_setup.core.access import access_findings

    users = [(u, False) for u in ctx.mapped_users()]
    login = ctx.facts.login_user
    if login:
        users = [(u, False) for u, _ in users if u != login] + [(login, True)]
    return access_findings(ctx.tree, users, {u: ctx.groups_of(u) for u, _ in users})


def _check_flow(ctx: Context) -> list[Finding]:
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
