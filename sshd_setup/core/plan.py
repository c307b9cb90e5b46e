"""Plan a host's files: the desired CA and principal mappings applied to its configuration tree.

plan_host() is pure: it reads through a FileSource and returns every managed file's before/after with a
one-line reason. Bytes outside our managed blocks are never touched; planning its own output again
changes nothing.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

import jinja2

from sshd_setup.core.blocks import MATCH_NAME, TOP_NAME, ManagedBlocks, strip_managed_blocks
from sshd_setup.core.config import parse
from sshd_setup.core.desired import Desired
from sshd_setup.core.finding import Finding, Severity
from sshd_setup.core.pathpolicy import existing_ca_file_problem, is_our_principals_file, managed_file_problem
from sshd_setup.core.sshkeys import InvalidKey, PublicKey, parse_key_file
from sshd_setup.core.tree import FileSource, SourceMissing, SourceUnreadable, load_tree

# Prints the certificate's principals; sshd needs one of them to be listed, so any certificate signed by
# a trusted CA (with at least one principal) is admitted. Tokens are expanded by sshd without quoting.
ALL_PRINCIPALS_COMMAND = "/bin/bash -c \"echo '%t %k' | ssh-keygen -L -f - | grep -A1 Principals\""
VENDOR_SSHD_CONFIG = "/usr/etc/ssh/sshd_config"


@dataclass(frozen=True)
class FileChange:
    path: str
    before: str | None
    """None when the file does not exist yet."""
    after: str
    reason: str
    mode: int | None = 0o644
    """None: keep the existing file's mode (sshd_config)."""
    owner: str = "root"
    group: str = "root"
    remove: bool = False
    """A principals file sshd-setup wrote for a mapping the inventory no longer has: delete it."""
    meta_drift: str = ""
    """Same content, but owner or mode differ from what sshd needs (e.g. 'mode 0600 → 0644')."""

    @property
    def changed(self) -> bool:
        return self.before != self.after or bool(self.meta_drift)


@dataclass(frozen=True)
class Plan:
    files: tuple[FileChange, ...] = ()
    directories: tuple[str, ...] = ()
    fix_directories: tuple[str, ...] = ()
    """Existing directories above a managed file to set to root:root 0755 (sshd's user must enter them)."""
    """Directories to create (root:root 0755) before writing files."""
    findings: tuple[Finding, ...] = ()
    kept_ca_keys: tuple[PublicKey, ...] = ()

    @property
    def changes(self) -> tuple[FileChange, ...]:
        return tuple(f for f in self.files if f.changed)

    @property
    def is_noop(self) -> bool:
        return not self.changes and not self.directories and not self.fix_directories

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    def noop_reason(self) -> str:
        return f"every managed file already matches the inventory ({len(self.files)} checked)"


def _with_newline(text: str, newline: str) -> str:
    return text.replace("\n", newline) if newline != "\n" else text


def render_main(
    env: jinja2.Environment, desired: Desired, current: str | None, *, include_vendor: bool = False
) -> tuple[str | None, str, ManagedBlocks]:
    """Return (new text or None when the markers are damaged, reason, blocks found)."""
    config = parse(current or "", desired.sshd_config)
    blocks = strip_managed_blocks(config)
    if blocks.problem:
        return None, blocks.problem, blocks
    newline = config.newline
    context = {
        "ca_path": desired.ca_path,
        "allow_all": desired.allow_all,
        "mappings": desired.mappings,
        "all_principals_command": ALL_PRINCIPALS_COMMAND,
    }
    top = _with_newline(env.get_template("sshd_config_top.j2").render(context), newline)
    bottom = _with_newline(env.get_template("sshd_config_match.j2").render(context), newline)
    body = list(blocks.body)
    if include_vendor and not body:
        body = [
            f"# The vendor's defaults (this file did not exist; sshd reads only one of the two).{newline}",
            f"Include {VENDOR_SSHD_CONFIG}{newline}",
        ]
    if body and not body[-1].endswith("\n"):
        body[-1] += newline
    new = top + "".join(body) + (bottom if desired.mappings else "")
    moved = current is not None and new != current
    return new, _main_reason(blocks, top, bottom if desired.mappings else None, current is None, moved), blocks


def _main_reason(blocks: ManagedBlocks, top: str, bottom: str | None, creating: bool, moved: bool = False) -> str:
    if creating:
        return "create: sshd_config with the gateway CA block and the principal mappings"
    parts: list[str] = []
    old_top = blocks.found.get(TOP_NAME)
    old_bottom = blocks.found.get(MATCH_NAME)
    if old_top is None:
        parts.append("add the gateway CA block at the top")
    elif old_top != top:
        parts.append("update the gateway CA block")
    if bottom is not None and old_bottom is None:
        parts.append("add the principal mappings block at the end")
    elif bottom is not None and old_bottom != bottom:
        parts.append("update the principal mappings")
    elif bottom is None and old_bottom is not None:
        parts.append("remove the principal mappings block (no mappings left)")
    stray = set(blocks.found) - {TOP_NAME, MATCH_NAME}
    if stray:
        parts.append(f"drop unknown managed block(s) {', '.join(sorted(stray))}")
    if not parts and not moved:
        return "unchanged: managed blocks already match the inventory"
    return "; ".join(parts) or "move the managed blocks back to the very top and the very end"


def render_ca(env: jinja2.Environment, keys: tuple[PublicKey, ...], kept: tuple[PublicKey, ...], kept_from: str) -> str:
    return env.get_template("ca_keys.j2").render(keys=keys, kept=kept, kept_from=kept_from)


def _read(source: FileSource, path: str) -> str | None:
    try:
        return source.read(path)
    except (SourceMissing, SourceUnreadable):
        return None


def plan_host(desired: Desired, source: FileSource, env: jinja2.Environment) -> Plan:
    """Plan every managed file for one host. Planning problems are findings, not exceptions."""
    findings: list[Finding] = []
    main_before = _read(source, desired.sshd_config)
    include_vendor = False
    if main_before is None:
        if desired.sshd_config == "/etc/ssh/sshd_config" and _read(source, VENDOR_SSHD_CONFIG) is not None:
            include_vendor = True
        else:
            findings.append(
                Finding(
                    "MAIN-CONFIG-MISSING",
                    Severity.ERROR,
                    f"{desired.sshd_config} does not exist",
                    "check sshd_setup.sshd_config, or that openssh-server is installed",
                    desired.sshd_config,
                )
            )
            return Plan(findings=tuple(findings))
    main_after, main_reason, _blocks = render_main(env, desired, main_before, include_vendor=include_vendor)
    if main_after is None:
        findings.append(
            Finding(
                "MANAGED-BLOCK-DAMAGED",
                Severity.ERROR,
                f"sshd-setup's markers are damaged: {main_reason}",
                "restore the BEGIN/END marker lines (or remove the block entirely) and run again",
                desired.sshd_config,
                _blocks.problem_line,
            )
        )
        return Plan(findings=tuple(findings))
    files: list[FileChange] = [
        FileChange(desired.sshd_config, main_before, main_after, main_reason, mode=None if main_before else 0o644)
    ]

    kept, kept_from = _foreign_ca_keys(desired, source, main_before, findings)
    ca_before = _read(source, desired.ca_path)
    ca_after = render_ca(env, desired.ca_keys, kept, kept_from)
    files.append(FileChange(desired.ca_path, ca_before, ca_after, _ca_reason(desired, ca_before, ca_after, kept)))

    for mapping in desired.mappings:
        if mapping.mode != "list" or mapping.file is None:
            continue
        before = _read(source, mapping.file)
        after = env.get_template("principals.j2").render(user=mapping.user, principals=mapping.principals)
        if before is None:
            reason = f"create: principals for {mapping.user} ({', '.join(mapping.principals)})"
        elif before != after:
            reason = f"update: principals for {mapping.user} are now {', '.join(mapping.principals)}"
        else:
            reason = f"unchanged: principals for {mapping.user} already listed"
        files.append(FileChange(mapping.file, before, after, reason))
    files += _unmapped_principals_files(desired, main_before, source)

    directories = _missing_directories([f.path for f in files if f.before is None], source)
    return Plan(files=tuple(files), directories=directories, findings=tuple(findings), kept_ca_keys=kept)


def _ca_reason(desired: Desired, before: str | None, after: str, kept: tuple[PublicKey, ...]) -> str:
    fingerprints = ", ".join(k.fingerprint for k in desired.ca_keys)
    extra = f" and {len(kept)} kept foreign key(s)" if kept else ""
    if before is None:
        return f"create: trust CA {fingerprints}{extra}"
    if before != after:
        return f"update: trust exactly CA {fingerprints}{extra}"
    return "unchanged: CA keys already match"


def _foreign_ca_keys(
    desired: Desired, source: FileSource, main_before: str | None, findings: list[Finding]
) -> tuple[tuple[PublicKey, ...], str]:
    """Keys of an existing, different effective TrustedUserCAKeys file, when the inventory says merge."""
    if main_before is None or desired.foreign_ca_keys != "merge":
        return (), ""
    tree = load_tree(source, desired.sshd_config)
    # The TrustedUserCAKeys that would be in force without our block: after a first merge ours wins,
    # and the foreign keys must stay kept on every later run.
    current = next(
        (d for d in tree.global_values("trustedusercakeys") if d.line.value not in ("none", desired.ca_path)), None
    )
    if current is None:
        return (), ""
    path = current.line.value
    text = _read(source, path)
    if text is None:
        return (), ""
    try:
        foreign = parse_key_file(text)
    except InvalidKey:
        # Which line, never what it says: that file may be anything (TrustedUserCAKeys /etc/shadow).
        findings.append(
            Finding(
                "FOREIGN-CA-UNREADABLE",
                Severity.ERROR,
                f"cannot merge the keys of {path}: {existing_ca_file_problem(text) or 'not a list of keys'}",
                "fix that file or set foreign_ca_keys: replace",
                current.path,
                current.lineno,
            )
        )
        return (), path
    kept = tuple(k for k in foreign if not any(k.same_key(d) for d in desired.ca_keys))
    return kept, path


def _unmapped_principals_files(desired: Desired, main_before: str | None, source: FileSource) -> list[FileChange]:
    """Principals files our old mappings block names that no mapping uses now, when we wrote them (header)."""
    old_block = strip_managed_blocks(parse(main_before or "", desired.sshd_config)).found.get(MATCH_NAME, "")
    wanted = {m.file for m in desired.mappings if m.file}
    removals: list[FileChange] = []
    for line in parse(old_block, desired.sshd_config).lines:
        path = line.value if line.keyword == "authorizedprincipalsfile" else ""
        if not path or path in wanted or managed_file_problem(path, "principals file", desired.managed_dirs):
            continue
        before = _read(source, path)
        if before is None or not is_our_principals_file(before) or any(c.path == path for c in removals):
            continue
        reason = "remove: a principals file sshd-setup wrote for a mapping the inventory no longer has"
        removals.append(FileChange(path, before, "", reason, remove=True))
    return removals


def _missing_directories(paths: list[str], source: FileSource) -> tuple[str, ...]:
    """Parent directories (below /etc/ssh or anywhere) that the files to create need."""
    needed: list[str] = []
    for path in paths:
        parent = posixpath.dirname(path)
        chain: list[str] = []
        while parent not in ("/", "") and not _dir_exists(source, parent):
            chain.append(parent)
            parent = posixpath.dirname(parent)
        for directory in reversed(chain):
            if directory not in needed:
                needed.append(directory)
    return tuple(needed)


def _dir_exists(source: FileSource, directory: str) -> bool:
    return source.is_dir(directory)
