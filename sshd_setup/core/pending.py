"""Has the RUNNING sshd loaded the configuration on disk? (pure)

sshd reads its configuration when it starts and when a reload re-executes it, and only then writes its pid
file. A tree file or Include directory newer than the pid file (of a live pid) is pending: on disk but not
in force. sshd-setup marks what it installs (PENDING_MARKER, written before the first rename, removed after
a reload succeeded), so a run cut between the rename and the reload, or `apply --no-reload`, is known to
be its own pending change; any other pending change is someone else's, which our reload would activate.
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass

from sshd_setup.core.facts import HostFacts
from sshd_setup.core.finding import Finding, Severity
from sshd_setup.core.tree import ConfigTree, SnapshotEntry, SnapshotSource, load_tree

PENDING_MARKER = "/var/backups/sshd-setup/pending"
STAGED_SUFFIX = ".sshd-setup-new"
DEFAULT_PID_FILES = ("/run/sshd.pid", "/var/run/sshd.pid")
# Keywords whose start-up value is shown for a pending file: what a reload would change in effect.
EFFECT_KEYWORDS = (
    "port",
    "listenaddress",
    "allowusers",
    "denyusers",
    "allowgroups",
    "denygroups",
    "pubkeyauthentication",
    "trustedusercakeys",
    "authorizedprincipalsfile",
    "authorizedprincipalscommand",
    "authenticationmethods",
    "permitrootlogin",
    "passwordauthentication",
)


@dataclass(frozen=True)
class Pending:
    loaded_at: float | None
    """When the running sshd last read its configuration (its pid file's time); None: no listener to ask
    (per-connection socket, no live pid file), so nothing can be pending."""
    pid_file: str = ""
    changed: tuple[str, ...] = ()
    """Tree files (and Include directories: a file added or removed) changed since sshd loaded them."""
    ours: tuple[str, ...] = ()
    """Of `changed`, the files sshd-setup installed (its marker names them, with these contents)."""
    marked: bool = False
    """sshd-setup installed files after sshd loaded its configuration and has not reloaded since."""

    @property
    def foreign(self) -> tuple[str, ...]:
        return tuple(p for p in self.changed if p not in self.ours)

    @property
    def needs_reload(self) -> bool:
        return bool(self.changed) or self.marked

    def describe(self) -> str:
        return ", ".join(self.changed) or "files sshd-setup installed without a reload"


def marker_hashes(text: str) -> dict[str, str]:
    """path → sha256 from the marker's sha256sum lines (staged `.NAME.sshd-setup-new.RUN` copies, or paths)."""
    hashes: dict[str, str] = {}
    for line in text.splitlines():
        digest, sep, path = line.partition("  ")
        if not sep or len(digest) != 64:
            continue
        directory, name = posixpath.split(path)
        if name.startswith(".") and STAGED_SUFFIX in name:  # .NAME.sshd-setup-new[.RUN]
            name = name[1 : name.rindex(STAGED_SUFFIX)]
        hashes[posixpath.join(directory, name)] = digest
    return hashes


def _sha256(entry: SnapshotEntry | None) -> str:
    if entry is None or entry.text is None:
        return ""
    return hashlib.sha256(entry.text.encode("utf-8", "surrogateescape")).hexdigest()


def _include_dirs(tree: ConfigTree) -> list[str]:
    dirs: list[str] = []
    for use in tree.includes:
        directory = posixpath.dirname(use.pattern if use.pattern.startswith("/") else "/etc/ssh/" + use.pattern)
        if directory and not any(c in directory for c in "*?[") and directory not in dirs:
            dirs.append(directory)
    return dirs


def pending_state(facts: HostFacts, tree: ConfigTree, pid_file: str = "") -> Pending:
    """pid_file: sshd's PidFile ('' = the built-in place, 'none' = none)."""
    if pid_file == "none":
        return Pending(None)
    socket = facts.socket_unit
    if socket is not None and socket.accept != "no":
        return Pending(None)  # every connection runs its own sshd -i, which reads the files as they are
    candidates = (pid_file,) if pid_file else DEFAULT_PID_FILES
    live = next((p for p in candidates if facts.pid_files.get(p) and p in facts.meta), None)
    if live is None:
        return Pending(None)
    loaded = facts.meta[live].mtime
    if loaded <= 0:
        return Pending(None)
    changed = [p for p in tree.files if (m := facts.meta.get(p)) is not None and m.mtime > loaded]
    for directory in _include_dirs(tree):
        meta = facts.meta.get(directory)
        inside = any(posixpath.dirname(p) == directory for p in changed)
        if meta is not None and meta.is_dir and meta.mtime > loaded and not inside:
            changed.append(directory)
    ours: list[str] = []
    marked = False
    if facts.pending_marker is not None:
        hashes = marker_hashes(facts.pending_marker)
        ours = [p for p in changed if p in hashes and hashes[p] == _sha256(facts.files.get(p))]
        marker = facts.meta.get(PENDING_MARKER)
        marked = marker is not None and marker.mtime > loaded
    return Pending(loaded, live, tuple(changed), tuple(ours), marked)


def _values(tree: ConfigTree) -> dict[str, str]:
    out: dict[str, str] = {}
    for keyword in EFFECT_KEYWORDS:
        values = [d.line.value for d in tree.global_values(keyword)]
        multi = keyword in ("port", "listenaddress", "allowusers", "denyusers", "allowgroups", "denygroups")
        out[keyword] = (", ".join(values) if multi else values[0]) if values else "(default)"
    return out


def effects(facts: HostFacts, tree: ConfigTree, path: str) -> str:
    """What the pending `path` changes in effect at start-up: 'keyword: before → after; ...'.

    Before is the tree without that file (the marker's backup is not read), after the tree as it is: the
    keywords it decides once sshd reloads. The main file's before is not known (no copy of what sshd read).
    """
    if path == tree.main_path or path not in tree.files:
        after = _values(tree)
        decided = sorted({d.keyword for d in tree.directives if d.path == path and d.keyword in after})
        shown = [f"{k} {after[k]}" for k in decided]
        return ("in force after a reload: " + "; ".join(shown)) if shown else ""
    files = {p: e for p, e in facts.files.items() if p != path}
    without = load_tree(SnapshotSource(files, set(facts.dirs)), tree.main_path)
    before, after = _values(without), _values(tree)
    diff = [f"{k}: {before[k]} → {after[k]}" for k in EFFECT_KEYWORDS if before[k] != after[k]]
    return ("effect of a reload: " + "; ".join(diff)) if diff else "no change to the watched keywords"


def pending_findings(facts: HostFacts, tree: ConfigTree, pending: Pending) -> list[Finding]:
    if not pending.needs_reload:
        return []
    since = f"the running sshd loaded its configuration at {pending.loaded_at:.0f} ({pending.pid_file})"
    out: list[Finding] = []
    if pending.ours or (pending.marked and not pending.foreign):
        shown = ", ".join(pending.ours) or "files sshd-setup installed"
        detail = "; ".join(e for e in (effects(facts, tree, p) for p in pending.ours) if e)
        out.append(
            Finding(
                "PENDING-RELOAD",
                Severity.WARNING,
                f"{shown}: installed by sshd-setup but not in force: {since} and has not reloaded since"
                + (f" ({detail})" if detail else ""),
                "run `sshd-setup apply` (it reloads, guarded) or reload sshd",
                pending.ours[0] if pending.ours else PENDING_MARKER,
            )
        )
    for path in pending.foreign:
        meta = facts.meta.get(path)
        when = f"{meta.mtime:.0f}" if meta else "?"
        kind = "directory (a file was added or removed)" if meta and meta.is_dir else "file"
        detail = effects(facts, tree, path) if not (meta and meta.is_dir) else ""
        out.append(
            Finding(
                "PENDING-FOREIGN-CHANGE",
                Severity.ERROR,
                f"{kind} {path} changed at {when}, after {since}: not sshd-setup's change, and a reload by "
                "sshd-setup would put it in force" + (f" ({detail})" if detail else ""),
                "check the change and reload sshd yourself (or revert it); pass --allow PENDING-FOREIGN-CHANGE "
                "to let sshd-setup reload it",
                path,
            )
        )
    return out
