"""Facts in ONE round trip: a POSIX sh script that prints everything plan and findings need.

The script follows sshd's Include lines itself (globs expanded by the remote shell, in C-locale order) so
the whole tree arrives at once. Its output is read by sshd_setup/remote/protocol.py (the host protocol),
re-exported here: parse_facts, parse_backups, FactsError.
"""

from __future__ import annotations

import shlex

from sshd_setup.core.desired import Desired
from sshd_setup.core.service import SYSTEMD_UNIT_DIRS
from sshd_setup.remote import HOST_LOCK, HostLock, script
from sshd_setup.remote.protocol import FactsError, parse_backups, parse_facts

__all__ = ["FactsError", "facts_script", "parse_backups", "parse_facts"]


def facts_script(
    desired: Desired, sshd_version: str = "", send_backup: str = "", login_user: str = "", lock: HostLock = HOST_LOCK
) -> str:
    """The one command that gathers facts for this desired state.

    sshd_version: what the server's SSH banner says (e.g. 'OpenSSH_9.2p1 Debian-2+deb12u3'); it spares the
    host an `sshd -V`. sshd re-executes its installed binary for every connection, so the banner names the
    installed version. Empty: the script asks sshd.
    login_user: the user sshd-setup logs in as, looked up too (AllowUsers/AllowGroups must admit it).
    lock: the host's lock, whose holder the script reports (LOCKED): the file state.sh takes.
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
            f"UNIT_DIRS={shlex.quote(' '.join(SYSTEMD_UNIT_DIRS))}",
            f"SSHD_VERSION={shlex.quote(sshd_version)}",
            f"SEND_BACKUP={shlex.quote(send_backup)}",
        ]
    )
    return header + "\n" + lock.shell() + script("facts.sh")
