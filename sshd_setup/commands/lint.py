"""`sshd-setup lint`: pre-flight findings for a local configuration tree, offline.

The tree is read through a FileSource that records every file it hands out, so the HostFacts built here
hold exactly what sshd would read (main file, Includes, CA and principals files), like gathered facts.
Owner and mode come from stat(2); users, units and the sshd version are not known offline (complete=False),
except that an enabled ssh.socket and its drop-ins are read from the tree.
"""

from __future__ import annotations

import dataclasses
import json
import os
import posixpath
import stat
import sys
from pathlib import Path

from sshd_setup import exitcodes
from sshd_setup.core.desired import DEFAULT_SSHD_CONFIG, Desired
from sshd_setup.core.facts import FileMeta, HostFacts, UnitState
from sshd_setup.core.finding import Finding, Severity
from sshd_setup.core.findings import CRYPTO_POLICY_FILE, find_problems
from sshd_setup.core.plan import VENDOR_SSHD_CONFIG, Plan, plan_host
from sshd_setup.core.tree import SnapshotEntry, SourceMissing, SourceUnreadable, load_tree
from sshd_setup.errors import InputError
from sshd_setup.inputfile import NotReadable, read_bounded
from sshd_setup.localfs import LocalRoot

JSON_SCHEMA = 1
SOCKET_UNIT_DIRS = ("/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")
SOCKET_DROPIN_DIRS = (
    "/etc/systemd/system/ssh.socket.d",
    "/run/systemd/generator/ssh.socket.d",
    "/usr/lib/systemd/system/ssh.socket.d",
)


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
    """An enabled ssh.socket (Ubuntu >= 22.10) with the ListenStream lines of its unit and drop-ins."""
    inner = source.inner
    for unit in ("ssh.socket", "sshd.socket"):
        wants = inner.local(f"/etc/systemd/system/sockets.target.wants/{unit}")
        enabled = wants.is_symlink() or wants.exists()  # an absolute link points into the host, not ROOT
        unit_text = next(
            (text for d in SOCKET_UNIT_DIRS if (text := _read_local(inner, f"{d}/{unit}")) is not None), None
        )
        if not enabled or unit_text is None:
            continue
        dropins: dict[str, str] = {}
        for directory in (d.replace("ssh.socket", unit) for d in SOCKET_DROPIN_DIRS):
            for path in inner.glob(f"{directory}/*.conf"):
                text = _read_local(inner, path)
                if text is not None:
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


def _main_path(path: str | None, root: Path, default: str) -> str:
    """The main file as a path on the host: PATH names it locally (without --root) or inside ROOT."""
    if path is None:
        return default
    if root == Path("/"):
        return str(Path(path).resolve())
    candidate = Path(path)
    if candidate.is_absolute():
        try:
            return "/" + str(candidate.resolve().relative_to(root.resolve()))
        except ValueError:
            return path  # an absolute path on the host, looked up under ROOT
    return "/" + path.removeprefix("./").lstrip("/")


def _desired_for(inventory: Path | None, host: str | None) -> tuple[Desired | None, list[str]]:
    if inventory is None and host is None:
        return None, []
    if inventory is None or host is None:
        raise InputError("--inventory/--host", "give both -i INVENTORY and --host NAME, or neither")
    from sshd_setup.inventory import load_inventory

    inv = load_inventory(inventory)
    if host not in inv.hosts:
        raise InputError(str(inventory), f"no host {host!r} in the inventory (hosts: {', '.join(inv.hosts)})")
    entry = inv.hosts[host]
    return entry.desired, list(entry.desired.warnings)


def local_sshd_version() -> str:
    """`sshd -V` of this machine (for linting '/'), or '' when there is none."""
    import shutil
    import subprocess

    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    try:
        proc = subprocess.run([sshd, "-V"], capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return ""
    first = (proc.stderr or proc.stdout).strip().splitlines()
    return first[0] if first and first[0].startswith("OpenSSH_") else ""


def lint_findings(
    *, root: Path, main: str | None = None, desired: Desired | None = None, sshd_version: str = ""
) -> tuple[str, list[Finding]]:
    """(main path, findings) for a local tree: the plan's own findings, then the pre-flight ones.

    sshd_version ('OpenSSH_9.2p1 ...') makes version-dependent checks exact; '' checks for every version.
    """
    main_path = main or (desired.sshd_config if desired is not None else DEFAULT_SSHD_CONFIG)
    if desired is not None and desired.sshd_config != main_path:
        desired = dataclasses.replace(desired, sshd_config=main_path)
    facts, plan = offline_facts(root, main_path, desired)
    facts.sshd_version_text = sshd_version
    findings = list(plan.findings) if plan is not None else []
    seen = {(f.code, f.path, f.line) for f in findings}
    for finding in find_problems(desired, facts, plan, main_path=main_path):
        if (finding.code, finding.path, finding.line) not in seen:
            findings.append(finding)
    return main_path, findings


def run_lint(
    *,
    path: str | None = None,
    root: Path | None = None,
    json_output: bool = False,
    inventory: Path | None = None,
    host: str | None = None,
) -> int:
    """Exit code: 0 without error findings, 1 with errors, 2 on bad usage."""
    try:
        desired, warnings = _desired_for(inventory, host)
        local_root = root if root is not None else Path("/")
        if not local_root.is_dir():
            raise InputError("--root", f"{local_root} is not a directory")
        default = desired.sshd_config if desired is not None else DEFAULT_SSHD_CONFIG
        main = _main_path(path, local_root, default)
        if path is not None and not (local_root / main.lstrip("/")).is_file():
            raise InputError(path, f"no such file{f' under {local_root}' if root is not None else ''}")
    except InputError as exc:
        print(f"sshd-setup: error: {exc}", file=sys.stderr)
        return exitcodes.exit_code(bad_input=True)
    label = host or (str(root) if root is not None else "localhost")
    version = local_sshd_version() if root is None else ""  # a tree under --root may come from any host
    main, findings = lint_findings(root=local_root, main=main, desired=desired, sshd_version=version)
    if json_output:
        document = {
            "schema": JSON_SCHEMA,
            "hosts": [{"host": label, "main": main, "findings": [f.to_json() for f in findings]}],
        }
        sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    else:
        from sshd_setup.output import finding_counts, print_findings, print_warnings

        print_warnings(warnings)
        print_findings(f"{label} ({main})", findings, stderr=False, wrap=False)
        if not findings:
            print(f"{label} ({main}): no findings")
        else:
            print(f"{label}: {finding_counts(findings)}")
    has_errors = any(f.severity is Severity.ERROR for f in findings)
    return exitcodes.exit_code(all_good=not has_errors)
