"""Human output shared by commands: findings grouped per host, coloured by severity, and warnings."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from sshd_setup.core.finding import Finding, Severity

if TYPE_CHECKING:
    from sshd_setup.grouping import Line

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def print_warnings(warnings: Iterable[str]) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console(stderr=True, highlight=False)
    console.soft_wrap = not console.is_terminal  # a log file gets whole lines
    for warning in warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}")


def print_findings(host: str, findings: Iterable[Finding], *, stderr: bool = True, wrap: bool = True) -> None:
    """Findings of one host, errors first; wrap=False leaves long lines whole (paths stay copyable)."""
    from rich.console import Console
    from rich.markup import escape

    findings = list(findings)
    if not findings:
        return
    console = Console(stderr=stderr, highlight=False, soft_wrap=not wrap)
    console.print(f"[bold]{escape(host)}[/bold]")
    order = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
    for finding in sorted(findings, key=lambda f: (order[f.severity], f.path, f.line)):
        style = _STYLE[finding.severity]
        where = f" {escape(finding.where)}" if finding.where else ""
        console.print(f"  [{style}]{finding.severity.value} {finding.code}[/{style}]{where}: {escape(finding.message)}")
        if finding.hint:
            console.print(f"      hint: {escape(finding.hint)}")


def finding_counts(findings: Iterable[Finding]) -> str:
    """'2 errors, 1 warning, 0 info' for a summary line."""
    findings = list(findings)
    errors = sum(1 for f in findings if f.severity is Severity.ERROR)
    warnings = sum(1 for f in findings if f.severity is Severity.WARNING)
    infos = len(findings) - errors - warnings
    return f"{errors} error{'s' if errors != 1 else ''}, {warnings} warning{'s' if warnings != 1 else ''}, {infos} info"


def print_lines(lines: Iterable[Line], *, stderr: bool = False) -> None:
    """Styled lines (sshd_setup.grouping) on a console; never hard-wrapped when it is not a terminal."""
    from rich.console import Console
    from rich.text import Text

    console = Console(stderr=stderr, highlight=False)
    console.soft_wrap = not console.is_terminal
    for line in lines:
        text = Text()
        for span in line:
            text.append(span.text, style=span.style or None)
        console.print(text)
