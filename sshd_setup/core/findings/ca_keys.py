"""Checks: foreign TrustedUserCAKeys, CA keys the plan drops, AuthenticationMethods without publickey."""

from __future__ import annotations

from sshd_setup.core.finding import Finding
from sshd_setup.core.findings.context import ERROR, INFO, WARNING, Context, _describe_keys, _keys_of, _who
from sshd_setup.core.placed import quote
from sshd_setup.core.precedence import decide


def _check_foreign_ca(ctx: Context) -> list[Finding]:
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


def _check_dropped_ca_keys(ctx: Context) -> list[Finding]:
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


def _check_auth_methods(ctx: Context) -> list[Finding]:
    users: list[str | None] = list(ctx.mapped_users()) or [None]
    out: list[Finding] = []
    reported: set[tuple[str, int]] = set()
    for user in users:
        d = decide(ctx.tree, ("authenticationmethods",), user, ctx.groups_of(user) if user else None).winner
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
                    f"{quote(d)}: a certificate alone does not log in {_who(user)}; sshd also asks for "
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
                    f"{quote(d)} never accepts publickey, so certificate logins fail {_who(user)}",
                    "add `publickey` as an alternative (space-separated) for these users",
                    path,
                    line,
                )
            )
    return out
