"""Owner and mode of the files sshd-setup manages, converged like their content. (pure)

sshd opens principals files as the TARGET user (and the CA file as root): a principals file made 0600, or a
directory above it that the user cannot enter, silently breaks certificate logins though not one byte
changed. So a managed file whose owner or mode differ from root:root 0644 is rewritten (same bytes, right
mode), and a directory inside /etc/ssh above one that is not root's, is group/world writable or not
enterable by others is set to root:root 0755 (as sshd-setup creates them).

final_mode() is the one place that says which owner and mode a path has once the plan is applied: the
apply script is told it for every file it writes, and the permission findings judge it.
"""

from __future__ import annotations

import dataclasses
import posixpath
from dataclasses import dataclass

from sshd_setup.core.facts import FileMeta, HostFacts
from sshd_setup.core.plan import FileChange, Plan

MANAGED_DIR_ROOT = "/etc/ssh/"
DIRECTORY_MODE = 0o755
"""Directories sshd-setup creates or fixes: root:root 0755 (remote/apply.sh make_dir and fix_dir)."""


@dataclass(frozen=True)
class FinalMode:
    """Owner, group and mode a path has once the plan is applied."""

    mode: int
    owner: str
    group: str
    is_dir: bool = False

    def for_script(self) -> tuple[int, str, str] | None:
        """(mode, owner, group) for the apply script's `stage`; None: copy them from the existing file there
        (a directory, or an owner not known by name: stat prints UNKNOWN for an id without one)."""
        if self.is_dir or not self.owner or not self.group or "UNKNOWN" in (self.owner, self.group):
            return None
        return (self.mode, self.owner, self.group)


def _existing(meta: FileMeta | None) -> FinalMode | None:
    if meta is None or not meta.exists:
        return None
    return FinalMode(meta.mode, meta.owner, meta.group, meta.is_dir)


def final_mode(path: str, plan: Plan | None, facts: HostFacts) -> FinalMode | None:
    """The owner and mode of `path` after the plan (None: absent after it, or not known).

    A planned file gets the plan's owner and mode, or keeps the existing file's (sshd_config: mode None),
    a directory to create or fix is root:root 0755, anything else stays as the facts found it.
    A symlinked managed file is written through to its target: its facts are the target's (stat -L).
    """
    existing = _existing(facts.meta.get(path))
    if plan is None:
        return existing
    change = next((c for c in plan.files if c.path == path), None)
    if change is not None:
        if change.remove:
            return None
        if change.mode is None:
            return existing
        return FinalMode(change.mode, change.owner, change.group)
    if path in plan.directories or path in plan.fix_directories:
        return FinalMode(DIRECTORY_MODE, "root", "root", is_dir=True)
    return existing


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
