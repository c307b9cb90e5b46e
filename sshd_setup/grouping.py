"""The human output of a fleet run, grouped so its size follows the kinds of results, not the host count.

Pure: host outcomes (sshd_setup.report) in, styled lines out (no rich, no terminal). Identical findings
print once with their hosts, identical changes once ("same change on 20 hosts"), the summary groups hosts
by status and reason; host lists are compressed (op1…op25). --json keeps every host's detail; this is for people.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sshd_setup.core.finding import Severity
from sshd_setup.report import HostOutcome, HostResult, Status

MAX_HOST_ITEMS = 8
"""Items (names or ranges) of a host list before '… +N more'."""
MAX_FINDING_GROUPS = 30
MAX_CHANGE_GROUPS = 4
MAX_REASONS_PER_STATUS = 5

SEVERITY_RANK = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
SEVERITY_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
STATUS_STYLE = {
    Status.CHANGED: "green",
    Status.UNCHANGED: "dim",
    Status.WOULD_CHANGE: "cyan",
    Status.CHECKED: "green",
    Status.PASSED: "green",
    Status.BLOCKED: "yellow",
    Status.FAILED: "bold red",
    Status.ROLLED_BACK: "red",
    Status.UNREACHABLE: "magenta",
    Status.NOT_STARTED: "yellow",
}


@dataclass(frozen=True)
class Span:
    text: str
    style: str = ""


Line = tuple[Span, ...]


@dataclass(frozen=True)
class View:
    """What to show: quiet keeps problems (warnings and errors) and the summary."""

    mode: str
    title: str
    elapsed: float
    quiet: bool = False
    min_severity: Severity = Severity.INFO
    run_id: str | None = None


def render(results: Sequence[HostResult], view: View) -> list[Line]:
    lines = finding_lines(results, view)
    if not view.quiet and view.mode in ("apply", "dry-run"):
        lines += change_lines(results, dry_run=view.mode == "dry-run")
    return lines + summary_lines(results, view)


# -- host lists -------------------------------------------------------------------------------------------

_NUMBERED = re.compile(r"^(.*?)(\d+)$")


def _natural(name: str) -> tuple[str, int, str]:
    match = _NUMBERED.match(name)
    return (match.group(1), int(match.group(2)), name) if match else (name, -1, name)


def _follows(previous: tuple[str, int, str], key: tuple[str, int, str]) -> bool:
    """op9 → op10 and op09 → op10 continue a run; op9 → op010 does not (another naming scheme)."""
    (prefix, number, name), (last_prefix, last_number, last_name) = key, previous
    digits, last_digits = name[len(prefix) :], last_name[len(last_prefix) :]
    padded = digits.startswith("0") or last_digits.startswith("0")
    return prefix == last_prefix and number == last_number + 1 and (len(digits) == len(last_digits) or not padded)


def compress_hosts(names: Iterable[str], limit: int = MAX_HOST_ITEMS) -> str:
    """'op1…op25, db3, db5' : runs of 3+ consecutive numbers (same prefix and digit width) become a range."""
    items: list[str] = []
    run: list[tuple[str, int, str]] = []

    def flush() -> None:
        if len(run) >= 3:
            items.append(f"{run[0][2]}…{run[-1][2]}")
        else:
            items.extend(name for _, _, name in run)
        run.clear()

    for key in sorted(map(_natural, set(names))):
        _, number, name = key
        if number < 0:
            flush()
            items.append(name)
            continue
        if run and not _follows(run[-1], key):
            flush()
        run.append(key)
    flush()
    if len(items) > limit:
        return ", ".join(items[:limit]) + f" … +{len(items) - limit} more"
    return ", ".join(items)


def _on_hosts(hosts: Sequence[str], total: int) -> str:
    if len(hosts) == 1:
        return f"on {hosts[0]}"
    every = " (all)" if len(hosts) == total and total > 1 else ""
    return f"on {len(hosts)} hosts{every}: {compress_hosts(hosts)}"


# -- findings ---------------------------------------------------------------------------------------------


def finding_lines(results: Sequence[HostResult], view: View) -> list[Line]:
    """One line per kind of finding (its line number may differ from host to host), with its hosts."""
    floor = SEVERITY_RANK[Severity.WARNING if view.quiet and view.min_severity is Severity.INFO else view.min_severity]
    groups: dict[tuple[Severity, str, str, str, str], tuple[list[str], set[int]]] = {}
    for result in results:
        for finding in result.findings:
            if SEVERITY_RANK[finding.severity] <= floor:
                key = (finding.severity, finding.code, finding.path, finding.message, finding.hint)
                hosts, lines_seen = groups.setdefault(key, ([], set()))
                lines_seen.add(finding.line)
                if not hosts or hosts[-1] != result.host:
                    hosts.append(result.host)
    ordered = sorted(groups.items(), key=lambda item: (SEVERITY_RANK[item[0][0]], -len(item[1][0]), item[0][1:]))
    lines: list[Line] = []
    for (severity, code, path, message, hint), (hosts, numbers) in ordered[:MAX_FINDING_GROUPS]:
        lines.append(
            (
                Span(f"{severity.value} {code}", SEVERITY_STYLE[severity]),
                Span(f"{_where(path, numbers)}: {message} — "),
                Span(_on_hosts(hosts, len(results)), "bold"),
            )
        )
        if hint:
            lines.append((Span(f"    hint: {hint}"),))
    if len(ordered) > MAX_FINDING_GROUPS:
        rest = ordered[MAX_FINDING_GROUPS:]
        count = len({h for _, (group, _) in rest for h in group})
        lines.append((Span(f"… {len(rest)} more kinds of findings on {count} hosts (see --json)", "dim"),))
    return lines


def _where(path: str, numbers: set[int]) -> str:
    """' /etc/ssh/sshd_config:12', ' /etc/ssh/sshd_config (lines 12, 17)', or '' without a path."""
    if not path:
        return ""
    known = sorted(n for n in numbers if n)
    if len(known) == 1 and len(numbers) == 1:
        return f" {path}:{known[0]}"
    if len(known) > 1:
        shown = ", ".join(map(str, known[:5])) + (" …" if len(known) > 5 else "")
        return f" {path} (lines {shown})"
    return f" {path}"


# -- changes ----------------------------------------------------------------------------------------------


def change_details(result: HostResult, dry_run: bool) -> list[str]:
    """One line per file written and user created, in the tense of the run (a dry-run changed nothing)."""
    lines = [f"{file.path}: {file.reason}" for file in result.files if file.changed]
    user_line = "would be created" if dry_run else "created"
    lines += [f"user {user}: {user_line} (mapped; create_users is on)" for user in result.users_created]
    return lines


def change_lines(results: Sequence[HostResult], dry_run: bool) -> list[Line]:
    wanted = Status.WOULD_CHANGE if dry_run else Status.CHANGED
    groups: dict[tuple[tuple[str, ...], tuple[str, ...]], list[str]] = {}
    for result in results:
        if result.status is wanted:
            diffs = tuple(f.diff for f in result.files if f.changed) if dry_run else ()
            groups.setdefault((tuple(change_details(result, dry_run)), diffs), []).append(result.host)
    ordered = sorted(groups.items(), key=lambda item: -len(item[1]))
    lines: list[Line] = []
    verb = "would change" if dry_run else "changed"
    for (details, diffs), hosts in ordered[:MAX_CHANGE_GROUPS]:
        same = f"same change {_on_hosts(hosts, len(results))}" if len(hosts) > 1 else f"change on {hosts[0]}"
        lines.append((Span(f"{verb}: ", "bold"), Span(same, "bold")))
        lines += [(Span(f"  {detail}"),) for detail in details]
        for diff in diffs:
            lines += [(Span(text, _diff_style(text)),) for text in diff.splitlines()]
    if len(ordered) > MAX_CHANGE_GROUPS:
        rest = ordered[MAX_CHANGE_GROUPS:]
        count = sum(len(hosts) for _, hosts in rest)
        lines.append((Span(f"… {len(rest)} more distinct changes on {count} hosts (see --json or --limit)", "dim"),))
    return lines


def _diff_style(text: str) -> str:
    if text.startswith(("+++", "---")):
        return "bold"
    if text.startswith("+"):
        return "green"
    if text.startswith("-"):
        return "red"
    return "cyan" if text.startswith("@@") else ""


# -- summary ----------------------------------------------------------------------------------------------


def summary_lines(results: Sequence[HostOutcome], view: View) -> list[Line]:
    """Every command's summary (verify's too): hosts grouped by status and reason."""
    rows = [(r.host, r.status.value, r.reason) for r in results]
    styles = {status.value: style for status, style in STATUS_STYLE.items()}
    return grouped_summary(rows, styles, view.title, view.elapsed, view.run_id)


def grouped_summary(
    rows: Sequence[tuple[str, str, str]], styles: dict[str, str], title: str, elapsed: float, run_id: str | None = None
) -> list[Line]:
    """(host, status, reason) rows as one line per status and reason, statuses in the order of `styles`."""
    run = f" · run {run_id}" if run_id else ""
    noun = "host" if len(rows) == 1 else "hosts"
    lines: list[Line] = [(Span(f"{title}: {len(rows)} {noun} in {elapsed:.1f} s{run}", "bold"),)]
    by_status: dict[str, dict[str, list[str]]] = {}
    for host, status, reason in rows:
        first = reason.splitlines()[0] if reason else ""
        by_status.setdefault(status, {}).setdefault(first, []).append(host)
    order = list(styles)
    statuses = sorted(by_status, key=lambda s: order.index(s) if s in order else len(order))
    width = max((len(status) for status in by_status), default=0)
    for status in statuses:
        reasons = sorted(by_status[status].items(), key=lambda item: -len(item[1]))
        style = styles.get(status, "")
        shown = [(hosts, f": {reason}" if reason else "") for reason, hosts in reasons[:MAX_REASONS_PER_STATUS]]
        if len(reasons) > MAX_REASONS_PER_STATUS:
            rest = reasons[MAX_REASONS_PER_STATUS:]
            shown.append(([h for _, hosts in rest for h in hosts], f": {len(rest)} other reasons (see --json)"))
        for hosts, said in shown:
            count = Span(f"  {status:<{width}} {len(hosts):>5}  ", style)
            lines.append((count, Span(compress_hosts(hosts), "bold"), Span(said)))
    counts = ", ".join(f"{sum(len(h) for h in by_status[s].values())} {s}" for s in statuses)
    lines.append((Span(counts),))
    return lines


def plain(lines: Iterable[Line]) -> str:
    """The lines as text without styles (tests, logs)."""
    return "\n".join("".join(span.text for span in line) for line in lines)
