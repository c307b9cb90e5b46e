"""Unified diffs of planned file changes, plain or coloured with rich."""

from __future__ import annotations

import difflib

from sshd_setup.core.plan import FileChange


def unified_diff(change: FileChange) -> str:
    before = (change.before or "").splitlines(keepends=True)
    after = change.after.splitlines(keepends=True)
    lines = difflib.unified_diff(
        before,
        after,
        fromfile=change.path if change.before is not None else "/dev/null",
        tofile="/dev/null" if change.remove else change.path,
    )
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


def colour_markup(diff: str) -> str:
    """rich markup for a unified diff: additions green, removals red, hunks cyan."""
    from rich.markup import escape

    out: list[str] = []
    for line in diff.splitlines():
        text = escape(line)
        if line.startswith(("+++", "---")):
            out.append(f"[bold]{text}[/bold]")
        elif line.startswith("+"):
            out.append(f"[green]{text}[/green]")
        elif line.startswith("-"):
            out.append(f"[red]{text}[/red]")
        elif line.startswith("@@"):
            out.append(f"[cyan]{text}[/cyan]")
        else:
            out.append(text)
    return "\n".join(out)
