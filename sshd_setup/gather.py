"""Facts in ONE round trip: a POSIX sh script that prints everything plan and findings need.

The script follows sshd's Include lines itself (globs expanded by the remote shell, in C-locale order) so
the whole tree arrives at once. Output is a stream of `@@KIND args` records; file contents are base64 so
no byte can be confused with a record. parse_facts() is pure and unit-tested.
"""

from __future__ import annotations

import base64
import binascii
import shlex
from dataclasses import replace

from sshd_setup.core.desired import Desired
from sshd_setup.core.facts import FileMeta, HostFacts, UnitState, UserInfo
from sshd_setup.core.runs import BackupEntry, BackupRun, HostBackups
from sshd_setup.core.tree import SnapshotEntry
from sshd_setup.remote import iter_records, script

VENDOR_MAIN = "/usr/etc/ssh/sshd_config"


def facts_script(desired: Desired, sshd_version: str = "", send_backup: str = "", login_user: str = "") -> str:
    """The one command that gathers facts for this desired state.

    sshd_version: what the server's SSH banner says (e.g. 'OpenSSH_9.2p1 Debian-2+deb12u3'); it spares the
    host an `sshd -V`. sshd re-executes its installed binary for every connection, so the banner names the
    installed version. Empty: the script asks sshd.
    login_user: the user sshd-setup logs in as, looked up too (AllowUsers/AllowGroups must admit it).
    """
    extra = [desired.ca_path, *(m.file for m in desired.mappings if m.file)]
    meta: list[str] = [desired.sshd_config]  # its owner and mode, kept when it is rewritten
    for path in extra:
        meta.append(path)
        parent = path.rsplit("/", 1)[0] or "/"
        while parent not in ("", "/"):
            if parent not in meta:
                meta.append(parent)
            parent = parent.rsplit("/", 1)[0]
    users = sorted({m.user for m in desired.mappings} | ({login_user} if login_user else set()))
    header = "\n".join(
        [
            f"MAIN={shlex.quote(desired.sshd_config)}",
            f"EXTRA_FILES={shlex.quote(' '.join(extra))}",
            f"META_PATHS={shlex.quote(' '.join(meta))}",
            f"USERS={shlex.quote(' '.join(users))}",
            f"SSHD_VERSION={shlex.quote(sshd_version)}",
            f"SEND_BACKUP={shlex.quote(send_backup)}",
        ]
    )
    return header + "\n" + script("facts.sh")


class FactsError(ValueError):
    """The facts output could not be understood."""


_BLOCKS = frozenset({"FILE", "DROPIN", "SYSTEMD", "PENDING"})


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


def parse_facts(output: str) -> tuple[HostFacts, list[str]]:
    """Parse the facts script's output into HostFacts, plus the names of existing backups."""
    facts = HostFacts()
    backups: list[str] = []
    lines = output.splitlines()
    if not lines or lines[0] != "@@BEGIN 1":
        raise FactsError("the facts command printed no facts (is /bin/sh there, does sudo need a password?)")
    if "@@END" not in lines:
        raise FactsError("the facts command stopped before its end")
    unit_files: dict[str, str] = {}
    os_release: list[str] = []
    for kind, rest, block in iter_records(output, _BLOCKS):
        if kind in _BLOCKS:
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
    return facts, backups


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


def parse_backups(output: str) -> HostBackups:
    """The backups the facts script lists (@@RUN), and the one it was asked to send (@@BKM / @@BKFILE)."""
    found = HostBackups()
    texts: dict[str, str] = {}
    manifest: list[tuple[str, str, str]] = []
    for kind, rest, block in iter_records(output, frozenset({"BKFILE"})):
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
    found.runs.sort(key=lambda run: run.seq)
    for entry_kind, digest, path in manifest:
        text = texts.get(path) if entry_kind == "existed" else None
        found.entries.append(BackupEntry(entry_kind, path, "" if digest == "-" else digest, text))
    return found
