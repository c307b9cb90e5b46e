"""Checks: modes and owners sshd insists on for the files it reads."""

from __future__ import annotations

import posixpath

from sshd_setup.core.filemodes import final_mode
from sshd_setup.core.finding import Finding
from sshd_setup.core.findings.context import ERROR, Context
from sshd_setup.core.precedence import decide


def _check_permissions(ctx: Context) -> list[Finding]:
    files: list[tuple[str, str, str | None]] = []  # (path, role, user allowed to own it)
    if ctx.desired is not None:
        files.append((ctx.desired.ca_path, "CA", None))
        files.extend((m.file, "principals", m.user) for m in ctx.desired.mappings if m.file)
    else:
        ca = ctx.tree.effective("trustedusercakeys")
        if ca is not None and ca.line.value.startswith("/") and "%" not in ca.line.value:
            files.append((ca.line.value, "CA", None))
    for user in [None, *ctx.mapped_users()]:
        d = decide(ctx.tree, ("authorizedprincipalsfile",), user, ctx.groups_of(user) if user else None).winner
        if d is None or not d.line.args:
            continue
        for raw in d.line.args:
            value = raw.replace("%u", user) if user else raw
            if value.startswith("/") and "%" not in value and value not in [f for f, _, _ in files]:
                files.append((value, "principals", user))
    strict = decide(ctx.tree, ("strictmodes",), None).winner
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
            meta = final_mode(item, ctx.plan, ctx.facts)
            if meta is None:
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
