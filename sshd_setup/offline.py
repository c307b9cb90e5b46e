"""Facts from a local tree standing for a host's '/': the offline gatherer (`lint`, `render --root`).

The online one is the facts script (gather.py + remote/facts.sh, read by remote/protocol.py); both fill
one model, HostFacts, and a test (tests/test_online_offline.py) holds them to the same findings.
The tree is read through a FileSource that records every file it hands out, so the facts hold exactly
what sshd would read (main file, Includes, CA and principals files), like gathered facts. Owner and mode
come from stat(2); users, units and the sshd version are not known offline (complete=False), except that
an enabled ssh.socket and its drop-ins are read from the tree.
"""

from __future__ import annotations

import os
import posixpath
import stat
from pathlib import Path

from sshd_setup.core.desired import DEFAULT_SSHD_CONFIG, Desired
from sshd_setup.core.facts import FileMeta, HostFacts, UnitState
from sshd_setup.core.findings import CRYPTO_POLICY_FILE
from sshd_setup.core.plan import VENDOR_SSHD_CONFIG, Plan, plan_host
from sshd_setup.core.service import SYSTEMD_UNIT_DIRS
from sshd_setup.core.tree import SnapshotEntry, SourceMissing, SourceUnreadable, load_tree
from sshd_setup.inputfile import NotReadable, read_bounded
from sshd_setup.localfs import LocalRoot


class _RecordingSource:
    """A FileSource over a LocalRoot that remembers every file and directory it was asked about."""

    def __init__(self, inner: LocalRoot) -> None:
        self.inner = inner
        self.files: dict[str, SnapshotEntry] = {}
        self.dirs: set[str] = set()
        self._globbed: set[str] = set()

    def read(self, path: str) -> str:
        try:
            text = self.inner.read(path)
        except SourceUnreadable as exc:
            self.files[path] = SnapshotEntry(None, str(exc) or "unreadable")
            raise
        except SourceMissing:
            if path in self._globbed:  # listed by a glob but cannot be opened: a dangling symlink
                self.files[path] = SnapshotEntry(None, "No such file or directory (a dangling symlink?)")
                raise SourceUnreadable("No such file or directory (a dangling symlink?)") from None
            raise
        self.files[path] = SnapshotEntry(text)
        return text

    def glob(self, pattern: str) -> list[str]:
        found = self.inner.glob(pattern)
        self._globbed.update(found)
        return found

    def is_dir(self, path: str) -> bool:
        if self.inner.is_dir(path):
            self.dirs.add(path)
            return True
        return False

    def try_read(self, path: str) -> str | None:
        try:
            return self.read(path)
        except (SourceMissing, SourceUnreadable):
            return None


def _names(root: Path, file: str) -> dict[int, str]:
    """uid/gid → name from the tree's own /etc/passwd or /etc/group."""
    names: dict[int, str] = {}
    try:
        text = read_bounded(root / file.lstrip("/")).decode("utf-8", errors="replace")
    except (OSError, NotReadable):
        return names
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 3 and parts[2].isdigit():
            names.setdefault(int(parts[2]), parts[0])
    return names


def _meta(root: Path, path: str, users: dict[int, str], groups: dict[int, str]) -> FileMeta:
    local = root / path.lstrip("/")
    try:
        st = os.stat(local)
    except OSError:
        return FileMeta(path, exists=False)
    if root == Path("/"):
        import grp
        import pwd

        try:
            owner = pwd.getpwuid(st.st_uid).pw_name
        except KeyError:
            owner = str(st.st_uid)
        try:
            group = grp.getgrgid(st.st_gid).gr_name
        except KeyError:
            group = str(st.st_gid)
    else:
        owner = users.get(st.st_uid, "root" if st.st_uid == 0 else str(st.st_uid))
        group = groups.get(st.st_gid, "root" if st.st_gid == 0 else str(st.st_gid))
        if os.geteuid() != 0 and st.st_uid == os.geteuid():
            owner = ""  # a copy made by this unprivileged user: its owner says nothing about the host
    return FileMeta(path, True, owner, group, stat.S_IMODE(st.st_mode), stat.S_ISDIR(st.st_mode))


def _socket_facts(source: _RecordingSource, facts: HostFacts) -> None:
    """An enabled ssh.socket (Ubuntu >= 22.10) with the ListenStream lines of its unit and drop-ins.

    Looked up as facts.sh does: the unit file first found in systemd's search path, the drop-ins of every
    directory of it (a name higher up hides the same name below).
    """
    inner = source.inner
    for unit in ("ssh.socket", "sshd.socket"):
        wants = inner.local(f"/etc/systemd/system/sockets.target.wants/{unit}")
        enabled = wants.is_symlink() or wants.exists()  # an absolute link points into the host, not ROOT
        unit_text = next(
            (text for d in SYSTEMD_UNIT_DIRS if (text := _read_local(inner, f"{d}/{unit}")) is not None), None
        )
        if not enabled or unit_text is None:
            continue
        dropins: dict[str, str] = {}
        names: set[str] = set()
        for directory in SYSTEMD_UNIT_DIRS:
            for path in inner.glob(f"{directory}/{unit}.d/*.conf"):
                text = _read_local(inner, path)
                if text is not None and posixpath.basename(path) not in names:
                    names.add(posixpath.basename(path))
                    dropins[path] = text
        facts.socket_dropins.update(dropins)
        listen: list[str] = []
        texts = [unit_text, *(dropins[p] for p in sorted(dropins, key=posixpath.basename))]
        for text in texts:
            for raw in text.splitlines():
                key, sep, value = raw.strip().partition("=")
                if sep and key.strip() == "ListenStream":
                    if value.strip():
                        listen.append(value.strip())
                    else:
                        listen.clear()
        facts.units[unit] = UnitState(unit, "loaded", "inactive", "enabled", tuple(listen))


def _read_local(inner: LocalRoot, path: str) -> str | None:
    try:
        return inner.read(path)
    except (SourceMissing, SourceUnreadable):
        return None


def offline_facts(root: Path, main: str, desired: Desired | None) -> tuple[HostFacts, Plan | None]:
    """Facts from a local tree standing for '/', and the plan for desired (when given)."""
    source = _RecordingSource(LocalRoot(root))
    tree = load_tree(source, main)
    if main not in source.files and main == DEFAULT_SSHD_CONFIG:
        tree = load_tree(source, VENDOR_SSHD_CONFIG)
    plan = None
    if desired is not None:
        from sshd_setup.templating import environment

        plan = plan_host(desired, source, environment())
    meta_paths: list[str] = []
    wanted: list[str] = [CRYPTO_POLICY_FILE]
    if desired is not None:
        meta_paths.append(desired.ca_path)
        meta_paths.extend(m.file for m in desired.mappings if m.file)
    users = [m.user for m in desired.mappings] if desired is not None else []
    for d in tree.directives:
        if d.keyword in ("trustedusercakeys", "authorizedprincipalsfile"):
            for value in d.line.args:
                candidates = [value.replace("%u", u) for u in users] if "%u" in value else [value]
                for candidate in candidates:
                    if candidate.startswith("/") and "%" not in candidate:
                        wanted.append(candidate)
                        meta_paths.append(candidate)
    for path in wanted:
        source.try_read(path)
    facts = HostFacts(files=dict(source.files), dirs=set(source.dirs), complete=False)
    users_by_id = _names(source.inner.root, "/etc/passwd")
    groups_by_id = _names(source.inner.root, "/etc/group")
    for path in dict.fromkeys(meta_paths):
        parent = path
        while parent not in ("", "/"):
            if parent not in facts.meta:
                facts.meta[parent] = _meta(source.inner.root, parent, users_by_id, groups_by_id)
            parent = posixpath.dirname(parent)
    release = _read_local(source.inner, "/etc/os-release") or _read_local(source.inner, "/usr/lib/os-release")
    if release is not None:
        facts.apply_os_release(release)
    _socket_facts(source, facts)
    return facts, plan
