"""Unified diffs of planned file changes."""

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
