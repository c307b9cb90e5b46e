"""The host protocol: what the remote scripts print, read into typed results.

Every script prints `@@KIND rest` records, one a line; some KINDs are followed by base64 lines up to
`@@EOF` (file contents, a command's output), so no byte of a host's files can be taken for a record.
facts.sh -> FactsOutput (HostFacts, the host's backups); apply.sh + state.sh (apply, uninstall, rollback)
-> ApplyOutcome. The orchestrator (pipeline.py, hostrestore.py) sees no record. Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from sshd_setup.core.facts import FileMeta, HostFacts, UnitState, UserInfo
from sshd_setup.core.runs import BackupEntry, BackupRun, HostBackups
from sshd_setup.core.tree import SnapshotEntry

END = "@@END"
"""The last line of every script's output: the script ran to its end (also where the transport stops reading)."""


def iter_records(output: str, blocks: frozenset[str]) -> Iterator[tuple[str, str, str]]:
    """(kind, rest, block) for each `@@KIND rest` line of a remote script's output.

    KINDs in `blocks` are followed by base64 lines up to `@@EOF`; block is that base64 text ('' otherwise).
    """
    lines = output.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.startswith("@@"):
            continue
        kind, _, rest = line[2:].partition(" ")
        body: list[str] = []
        if kind in blocks:
            while i < len(lines) and lines[i] != "@@EOF":
                body.append(lines[i])
                i += 1
            i += 1
        yield kind, rest, "".join(body)


def reached_end(output: str) -> bool:
    """Did the script print its END record (it ran to its end, whatever its exit code)?"""
    return END in output


@dataclass(frozen=True)
class ApplyOutcome:
    """What apply.sh + state.sh reported (an apply, uninstall or rollback); first record of a kind wins."""

    backup: str | None = None
    """The whole-state backup this run took (BACKUP)."""
    failed_step: str | None = None
    """The step that failed (FAIL): lock, cas, stage, validate, dir, user, backup, install, reload, inactive..."""
    output: str = ""
    """What the failed step said (the OUTPUT block, decoded, stripped)."""
    rollback_ok: bool | None = None
    """After a failed reload the script restored its backup: sshd up again (True) or not (False); None: no
    rollback ran (ROLLEDBACK ok|dead)."""
    seen: str = ""
    """How the reload was seen: 'pidfile' (the new sshd wrote its pid file) or 'active' (the init system)."""
    lock: str = ""
    """'held' (taken), 'joined' (this run's own lock, from its other session), '' (not reported)."""
    took_over: tuple[str, ...] = ()
    """Runs whose lock this one took over (their process on the host was gone); '?' when unnamed."""
    cleaned: tuple[str, ...] = ()
    """Leftovers of a cut run that were removed (CLEANED)."""
    restored: str | None = None
    """The backup a restore was proved against by hash (RESTORED)."""
    restore_incomplete: str = ""
    """The paths that differ from the backup after a restore, or why it could not be proved."""
    users_created: tuple[str, ...] = ()
    dirs_created: tuple[str, ...] = ()
    dirs_removed: tuple[str, ...] = ()
    """Directories this run created and removed again after a later failure."""
    removed: tuple[str, ...] = ()
    """Principals files of dropped mappings that were removed (REMOVED)."""
    steps: tuple[str, ...] = ()
    """The steps done, in order (STEP): validated, installed, put-back NAME, reloaded."""
    ended: bool = False
    """The script printed END (it ran to its end: a failure says FAIL first)."""

    @property
    def failed(self) -> bool:
        return self.failed_step is not None

    @property
    def kept_creations(self) -> tuple[str, ...]:
        """What the run created and did not take back: 'user NAME', 'directory PATH' (users are kept)."""
        made = [f"user {u}" for u in self.users_created] + [f"directory {d}" for d in self.dirs_created]
        return tuple(m for m in made if m.split(" ", 1)[1] not in self.dirs_removed)


def parse_apply_output(output: str) -> ApplyOutcome:
    """Read the records of apply.sh + state.sh (an apply, an uninstall or a rollback)."""
    first: dict[str, str] = {}
    listed: dict[str, list[str]] = {}
    lock = ""
    took_over: list[str] = []
    for kind, rest, block in iter_records(output, frozenset({"OUTPUT"})):
        if kind == "OUTPUT":
            rest = base64.b64decode(block).decode("utf-8", "replace").strip()
        first.setdefault(kind, rest)
        word, _, tail = rest.partition(" ")
        if kind in ("USER", "DIR"):  # USER created NAME; DIR created|fixed|removed PATH
            listed.setdefault(f"{kind} {word}", []).append(tail)
        elif kind in ("REMOVED", "STEP"):
            listed.setdefault(kind, []).append(rest)
        elif kind == "LOCK" and word == "took-over":  # LOCK took-over RUN PID TIME, then LOCK held
            took_over.append(tail.split()[0] if tail.split() else "?")
        elif kind == "LOCK" and not lock:
            lock = word
    rolled = first.get("ROLLEDBACK")
    return ApplyOutcome(
        backup=first.get("BACKUP"),
        failed_step=first.get("FAIL"),
        output=first.get("OUTPUT", ""),
        rollback_ok=None if rolled is None else rolled == "ok",
        seen=first.get("SEEN", ""),
        lock=lock,
        took_over=tuple(took_over),
        cleaned=tuple(first.get("CLEANED", "").split()),
        restored=first.get("RESTORED"),
        restore_incomplete=first.get("RESTORE-INCOMPLETE", "").strip(),
        users_created=tuple(listed.get("USER created", [])),
        dirs_created=tuple(listed.get("DIR created", [])),
        dirs_removed=tuple(listed.get("DIR removed", [])),
        removed=tuple(listed.get("REMOVED", [])),
        steps=tuple(listed.get("STEP", [])),
        ended="END" in first,
    )


@dataclass(frozen=True)
class FactsOutput:
    """What facts.sh reported: the host's facts and its backups."""

    facts: HostFacts
    backup_names: list[str] = field(default_factory=list)
    """The names of the host's complete backups (BACKUPS)."""
    backups: HostBackups = field(default_factory=HostBackups)
    """The backups in run order (RUN), and the one facts.sh was asked to send (BKNAME, BKM, BKFILE)."""


def parse_facts_output(output: str) -> FactsOutput:
    """Read facts.sh's output in one pass (FactsError when it is not a whole facts output)."""
    lines = output.splitlines()
    if not lines or lines[0] != "@@BEGIN 1":
        raise FactsError("the facts command printed no facts (is /bin/sh there, does sudo need a password?)")
    if "@@END" not in lines:
        raise FactsError("the facts command stopped before its end")
    return _read_facts(output)


def parse_facts(output: str) -> tuple[HostFacts, list[str]]:
    """The facts script's output as HostFacts, plus the names of existing backups."""
    read = parse_facts_output(output)
    return read.facts, read.backup_names


def parse_backups(output: str) -> HostBackups:
    """The backups the facts script lists (@@RUN), and the one it was asked to send (@@BKNAME/@@BKM/@@BKFILE)."""
    return _read_facts(output).backups


class FactsError(ValueError):
    """The facts output could not be understood."""


_BLOCKS = frozenset({"FILE", "DROPIN", "SYSTEMD", "PENDING"})
_BACKUP_KINDS = frozenset({"RUN", "BKNAME", "BKM", "BKFILE"})
_FACTS_BLOCKS = _BLOCKS | {"BKFILE"}


def _seconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0


def _decode(block: str) -> str:
    try:
        return base64.b64decode(block, validate=False).decode("utf-8", "surrogateescape")
    except (binascii.Error, ValueError) as exc:
        raise FactsError(f"bad base64 in facts: {exc}") from None


def _read_facts(output: str) -> FactsOutput:
    facts = HostFacts()
    backups: list[str] = []
    found = HostBackups()
    bk_texts: dict[str, str] = {}
    manifest: list[tuple[str, str, str]] = []
    unit_files: dict[str, str] = {}
    os_release: list[str] = []
    for kind, rest, block in iter_records(output, _FACTS_BLOCKS):
        if kind in _BACKUP_KINDS:
            _backup_record(found, bk_texts, manifest, kind, rest, block)
        elif kind in _BLOCKS:
            text = _decode(block)
            if kind == "FILE":
                facts.files[rest] = SnapshotEntry(text)
            elif kind == "DROPIN":
                facts.socket_dropins[rest] = text
            elif kind == "PENDING":
                facts.pending_marker = text
            else:
                _systemd_units(facts, text)
        elif kind == "UNREADABLE":
            facts.files[rest] = SnapshotEntry(None, "permission denied or not a regular file")
        elif kind == "DIR":
            facts.dirs.add(rest)
        elif kind == "LINK":
            path, _, target = rest.partition(" ")
            facts.links[path] = target
        elif kind == "SSHDV":
            facts.sshd_version_text = rest
        elif kind == "INIT":
            facts.init = rest.strip()
        elif kind == "META":
            parts = rest.split(":", 5)
            if len(parts) >= 5 and parts[3] == "missing":  # -:-:-:missing:PATH
                path = rest.split(":", 4)[4]
                facts.meta[path] = FileMeta(path, exists=False)
            elif len(parts) == 6:  # owner:group:mode:type:mtime:PATH
                owner, group, mode, ftype, mtime, path = parts
                is_dir = ftype == "directory"
                octal = int(mode, 8) if mode.isdigit() else 0
                facts.meta[path] = FileMeta(path, True, owner, group, octal, is_dir, _seconds(mtime))
                if is_dir:
                    facts.dirs.add(path)
        elif kind == "USERS":  # asked for; those without a USER record do not exist
            for name in rest.split():
                facts.users.setdefault(name, None)
        elif kind == "USER":
            parts = rest.split(" ", 2)
            if len(parts) == 3 and parts[1].isdigit():
                facts.users[parts[0]] = UserInfo(parts[0], int(parts[1]), parts[2])
        elif kind == "GROUPS":
            name, _, groups = rest.partition(" ")
            info = facts.users.get(name)
            if info is not None:
                facts.users[name] = replace(info, groups=tuple(groups.split()))
        elif kind == "OSR":
            os_release.append(rest)
        elif kind == "UNITFILE":
            name, _, state = rest.partition(" ")
            unit_files[name] = state
        elif kind in ("EXEC", "ENVFILE"):
            unit, _, value = rest.partition(" ")
            by_unit = facts.unit_exec if kind == "EXEC" else facts.unit_env_files
            by_unit.setdefault(unit, []).append(value.strip())
        elif kind == "ENV":
            path, _, assignment = rest.partition(" ")
            key, _, value = assignment.partition("=")
            facts.start_env.setdefault(path, {})[key] = value
        elif kind == "ADDRS":
            facts.addresses = frozenset(rest.split())
        elif kind == "STARTMAIN":
            facts.start_main = rest.strip()
        elif kind == "SSHDPID":
            state, _, path = rest.partition(" ")
            facts.pid_files[path] = state == "alive"
        elif kind == "LOCKED":
            facts.locked_by = rest.strip()
        elif kind == "BACKUPS":
            backups = rest.split()
    if os_release:
        facts.apply_os_release("\n".join(os_release))
    for name, state in unit_files.items():  # systemctl was not asked: what the unit files say
        facts.units.setdefault(name, UnitState(name, load_state=state, active_state="unknown"))
    found.runs.sort(key=lambda run: run.seq)
    for entry_kind, digest, path in manifest:
        saved = bk_texts.get(path) if entry_kind == "existed" else None
        found.entries.append(BackupEntry(entry_kind, path, "" if digest == "-" else digest, saved))
    return FactsOutput(facts, backups, found)


def _systemd_units(facts: HostFacts, text: str) -> None:
    """`systemctl show -p Id -p LoadState ...` of several units: blocks separated by blank lines."""
    for block in text.split("\n\n"):
        values: dict[str, list[str]] = {}
        for raw in block.splitlines():
            key, sep, value = raw.partition("=")
            if sep:
                values.setdefault(key, []).append(value)
        name = (values.get("Id") or [""])[0]
        if not name:
            continue
        listen = tuple(item for value in values.get("Listen", []) for item in [value.replace(" (Stream)", "")] if item)
        facts.units[name] = UnitState(
            name,
            (values.get("LoadState") or ["not-found"])[0],
            (values.get("ActiveState") or ["inactive"])[0],
            (values.get("UnitFileState") or [""])[0],
            listen,
            (values.get("Accept") or [""])[0] if name.endswith(".socket") else "",
            (values.get("KillMode") or [""])[0] if name.endswith(".service") else "",
            (values.get("NeedDaemonReload") or ["no"])[0] == "yes",
            tuple(" ".join(values.get("DropInPaths", [])).split()),
        )


def _backup_record(
    found: HostBackups, texts: dict[str, str], manifest: list[tuple[str, str, str]], kind: str, rest: str, block: str
) -> None:
    """RUN seq name kind first changed...; BKNAME / BKM kind sha path / BKFILE path: the backup asked for."""
    if kind == "RUN":
        parts = rest.split()
        if len(parts) >= 4 and parts[0].isdigit():
            seq, name, run_kind, first = parts[:4]
            found.runs.append(BackupRun(int(seq), name, run_kind, first == "1", tuple(parts[4:])))
    elif kind == "BKNAME":
        found.sent = rest.strip()
    elif kind == "BKM":
        entry_kind, _, tail = rest.partition(" ")
        digest, _, path = tail.partition(" ")
        manifest.append((entry_kind, digest, path))
    elif kind == "BKFILE":
        texts[rest] = _decode(block)
