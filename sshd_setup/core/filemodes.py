"""Owner and mode of the files sshd-setup manages, converged like their content. (pure)

sshd opens principals files as the TARGET user (and the CA file as root): a principals file made 0600, or a
directory above it that the user cannot enter, silently breaks certificate logins though not one byte
changed. So a managed file whose owner or mode differ from root:root 0644 is rewritten (same bytes, right
mode), and a directory inside /etc/ssh above one that is not root's, is group/world writable or not
enterable by others is set to root:root 0755 (as sshd-setup creates them).
"""

from __future__ import annotations

import dataclasses
import posixpath

from sshd_setup.core.facts import FileMeta, HostFacts
from sshd_setup.core.plan import FileChange, Plan

MANAGED_DIR_ROOT = "/etc/ssh/"


def _drift(meta: FileMeta | None, mode: int, owner: str, group: str) -> str:
    if meta is None or not meta.exists or meta.is_dir or not meta.owner or "UNKNOWN" in (meta.owner, meta.group):
        return ""
    problems = []
    if meta.mode & 0o7777 != mode:
        problems.append(f"mode {meta.mode & 0o7777:04o} → {mode:04o}")
    if (meta.owner, meta.group) != (owner, group):
        problems.append(f"owner {meta.owner}:{meta.group} → {owner}:{group}")
    return ", ".join(problems)


def _dir_needs_fix(meta: FileMeta | None) -> bool:
    if meta is None or not meta.exists or not meta.is_dir or not meta.owner:
        return False
    return meta.owner != "root" or bool(meta.mode & 0o022) or not meta.mode & 0o001


def converge_modes(plan: Plan, facts: HostFacts) -> Plan:
    """The plan, with managed files whose owner/mode drifted marked as changes and their directories fixed."""
    if not facts.complete:
        return plan
    files: list[FileChange] = []
    directories: list[str] = []
    for change in plan.files:
        if change.mode is None or change.before is None or change.remove:
            files.append(change)
            continue
        drift = (
            ""
            if change.before != change.after
            else _drift(facts.meta.get(change.path), change.mode, change.owner, change.group)
        )
        if drift:
            change = dataclasses.replace(change, meta_drift=drift, reason=f"{change.reason}; {drift} (sshd needs it)")
        files.append(change)
        parent = posixpath.dirname(change.path)
        while parent.startswith(MANAGED_DIR_ROOT) and parent != MANAGED_DIR_ROOT.rstrip("/"):
            if parent not in directories and parent not in plan.directories and _dir_needs_fix(facts.meta.get(parent)):
                directories.append(parent)
            parent = posixpath.dirname(parent)
    return dataclasses.replace(plan, files=tuple(files), fix_directories=tuple(sorted(directories)))
