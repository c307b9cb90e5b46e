"""Checks: tree errors, Include order and results, managed-block position, global-only keywords in Match."""

from __future__ import annotations

from sshd_setup.core.blocks import TOP_NAME, block_spans
from sshd_setup.core.desired import DEFAULT_SSHD_CONFIG
from sshd_setup.core.finding import Finding
from sshd_setup.core.findings.context import ERROR, INFO, WARNING, Context, _name
from sshd_setup.core.openssh import MATCH_KEYWORDS, MATCH_KEYWORDS_SINCE, WATCHED_KEYWORDS
from sshd_setup.core.placed import quote
from sshd_setup.core.plan import VENDOR_SSHD_CONFIG
from sshd_setup.core.precedence import applies_at_startup


def _check_tree_errors(ctx: Context) -> list[Finding]:
    out: list[Finding] = []
    include_problems = {(u.path, u.lineno) for u in ctx.before.includes if u.kind not in ("", "no-match")}
    for path, line, message in ctx.before.errors:
        if (path, line) in include_problems:
            continue  # reported by the Include check with its own code
        if line == 0 and path == ctx.before.main_path and ctx.before.main_missing:
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
            main_missing = line == 0 and path == ctx.after.main_path and ctx.after.main_missing
            if (path, message) not in known and not (ctx.vendor and main_missing):
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


def _check_global_only_in_match(ctx: Context) -> list[Finding]:
    out: list[Finding] = []
    version = ctx.facts.sshd_version
    for d in ctx.before.directives:
        if d.keyword in MATCH_KEYWORDS or not d.conditions or applies_at_startup(d):
            continue
        since = MATCH_KEYWORDS_SINCE.get(d.keyword)
        if since is not None and version is not None and version >= since:
            continue
        severity = WARNING if since is not None and version is None else ERROR
        out.append(
            Finding(
                "MATCH-GLOBAL-ONLY",
                severity,
                f"{quote(d)} sits inside a Match block (line {d.match_lineno or '?'} or an enclosing Include), "
                f"where sshd refuses it: \"Directive '{d.line.raw.split()[0]}' is not allowed within a Match block\""
                + (f" (allowed there only from OpenSSH {since[0]}.{since[1]})" if since else ""),
                "move the line above the first Match line of its file",
                d.path,
                d.lineno,
            )
        )
    return out


def _check_includes(ctx: Context) -> list[Finding]:
    out: list[Finding] = []
    watched = set(WATCHED_KEYWORDS)
    for use in ctx.before.includes:
        if use.kind == "no-match":
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
        elif use.kind == "loop":
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
        elif use.kind == "directory":
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
        elif use.kind == "unreadable":
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


def _check_block_position(ctx: Context) -> list[Finding]:
    config = ctx.before.files.get(ctx.before.main_path)
    if config is None:
        return []
    out: list[Finding] = []
    for name, start, _end in block_spans(config):
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
                    f"{len(above)} directive(s) sit above sshd-setup's managed block (first: {quote(above[0])} at "
                    f"line {above[0].lineno}); sshd reads them, and any file they Include, before the block, so "
                    "their values win over it",
                    fix,
                    config.path,
                    above[0].lineno,
                )
            )
    return out


def _check_vendor(ctx: Context) -> list[Finding]:
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
