"""Findings about what the host itself must provide for the planned tree: its addresses, sshd's helpers. (pure)

`sshd -t` checks neither: it accepts a ListenAddress the host does not have and an SshdSessionPath that does
not exist, and the reload's re-exec then cannot bind or start.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from sshd_setup.core.facts import HostFacts
from sshd_setup.core.finding import Finding, Severity
from sshd_setup.core.placed import Placed, quote
from sshd_setup.core.tree import ConfigTree

HELPER_KEYWORDS = {"sshdsessionpath": "SshdSessionPath", "sshdauthpath": "SshdAuthPath"}
Where = Callable[[Placed], tuple[str, int]]


def listen_host(argument: str) -> str:
    """The address part of a ListenAddress argument: '[::1]:22' → '::1', '10.0.0.1:22' → '10.0.0.1'."""
    bracketed = re.fullmatch(r"\[(.*)\](?::\d+)?", argument)
    if bracketed:
        return bracketed.group(1)
    return argument.split(":")[0] if argument.count(":") == 1 else argument


def listen_address_findings(tree: ConfigTree, facts: HostFacts, where: Where) -> list[Finding]:
    own = facts.addresses
    if own is None:  # not gathered: no ListenAddress on the host, or offline
        return []
    out: list[Finding] = []
    for d in tree.global_values("listenaddress"):
        if not d.line.args:
            continue
        try:
            address = ipaddress.ip_address(listen_host(d.line.args[0]).split("%")[0])
        except ValueError:
            continue  # a host name: resolved by sshd, not judged here
        if address.is_unspecified or str(address) in own:
            continue
        path, line = where(d)
        out.append(
            Finding(
                "LISTEN-ADDRESS-NOT-ON-HOST",
                Severity.ERROR,
                f"{quote(d)}: {address} is not an address of this host (it has {', '.join(sorted(own)) or 'none'}): "
                "`sshd -t` accepts it, but sshd cannot bind it, and an sshd left with nothing to bind exits on reload",
                "remove the line or use one of the host's addresses",
                path,
                line,
            )
        )
    return out


def helper_paths(tree: ConfigTree) -> list[Placed]:
    """SshdSessionPath / SshdAuthPath lines in force (OpenSSH >= 9.8 execs them for every connection)."""
    found = [tree.effective(keyword) for keyword in HELPER_KEYWORDS]
    return [d for d in found if d is not None and d.line.args]


def helper_findings(tree: ConfigTree, facts: HostFacts, where: Where) -> list[Finding]:
    out: list[Finding] = []
    for d in helper_paths(tree):
        path = d.line.args[0]
        meta = facts.meta.get(path)
        if meta is None:
            continue  # not gathered (e.g. offline lint)
        if meta.exists and not meta.is_dir and meta.mode & 0o111:
            continue
        state = "does not exist" if not meta.exists else "is not an executable file"
        file, line = where(d)
        out.append(
            Finding(
                "SSHD-HELPER-MISSING",
                Severity.ERROR,
                f"{quote(d)}: {path} {state}: `sshd -t` does not check it, but sshd (OpenSSH >= 9.8) refuses to "
                f"start without its {HELPER_KEYWORDS[d.keyword]}, so a reload would kill it",
                "point it at the installed binary (e.g. /usr/lib/openssh/sshd-session) or remove the line",
                file,
                line,
            )
        )
    return out


def daemon_reload_findings(facts: HostFacts) -> list[Finding]:
    """An ssh socket whose unit files changed since systemd loaded them: it listens as before until
    `systemctl daemon-reload` (or a reboot), and as the files say after it.

    systemd's NeedDaemonReload misses a drop-in in a directory it did not load from (systemd 252), so the
    drop-ins on disk are also compared with the ones it loaded (DropInPaths). A pending drop-in that changes
    where the socket listens is an error, as a pending foreign change of sshd's files is (PENDING-FOREIGN-CHANGE).
    """
    out = []
    for name in ("ssh.socket", "sshd.socket"):
        unit = facts.units.get(name)
        if unit is None or not unit.exists:
            continue
        on_disk = {path for path in facts.socket_dropins if f"/{name}.d/" in path}
        unloaded = sorted(on_disk - set(unit.dropin_paths))
        gone = sorted(p for p in unit.dropin_paths if p not in on_disk and f"/{name}.d/" in p)
        if not (unit.need_daemon_reload or unloaded or gone):
            continue
        listening = [
            f"{path}: {line.strip()}"
            for path in unloaded
            for line in (facts.socket_dropins[path] or "").splitlines()
            if line.strip().split("=", 1)[0].strip() in ("ListenStream", "Accept")
        ]
        parts = [f"not loaded yet: {', '.join(unloaded)}" if unloaded else ""]
        parts.append(f"gone: {', '.join(gone)}" if gone else "")
        what = "; ".join(p for p in parts if p)
        listen = ", ".join(unit.listen) or "nothing"
        changes_listening = bool(listening or gone)
        out.append(
            Finding(
                "SOCKET-DAEMON-RELOAD-PENDING",
                Severity.ERROR if changes_listening else Severity.WARNING,
                f"{name}'s unit files or drop-ins changed since systemd loaded them"
                + (f" ({what})" if what else "")
                + f": it listens on {listen} now, and as the files say after the next `systemctl daemon-reload` "
                "or reboot" + (f" ({'; '.join(listening)})" if listening else ""),
                "review those drop-ins, then run systemctl daemon-reload and systemctl restart "
                f"{name} knowingly (sshd-setup never does either)"
                + ("; pass --allow SOCKET-DAEMON-RELOAD-PENDING to proceed anyway" if changes_listening else ""),
                (unloaded or gone or [f"/etc/systemd/system/{name}"])[0],
                0,
            )
        )
    return out
