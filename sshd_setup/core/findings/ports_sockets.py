"""Checks: ports, socket activation, start options, listen addresses, helpers, pending changes."""

from __future__ import annotations

import posixpath
import re

from sshd_setup.core.desired import Desired
from sshd_setup.core.finding import Finding
from sshd_setup.core.findings.context import ERROR, WARNING, Context
from sshd_setup.core.placed import Placed, quote
from sshd_setup.core.tree import ConfigTree


def _port_of_listen(argument: str) -> int | None:
    bracketed = re.fullmatch(r"\[(.*)\]:(\d+)", argument)
    if bracketed:
        return int(bracketed.group(2))
    if argument.count(":") == 1:
        port = argument.split(":")[1]
        return int(port) if port.isdigit() else None
    return None


def _port_directives(tree: ConfigTree) -> tuple[list[tuple[Placed, int]], list[tuple[Placed, int | None]]]:
    """(Port lines with their port, ListenAddress lines with their own port or None) at start-up."""
    ports = [(d, int(d.line.args[0])) for d in tree.global_values("port") if d.line.args and d.line.args[0].isdigit()]
    listens = [(d, _port_of_listen(d.line.args[0])) for d in tree.global_values("listenaddress") if d.line.args]
    return ports, listens


def listen_ports(tree: ConfigTree) -> set[int]:
    """The ports sshd binds at start-up: each ListenAddress's own port, else every Port (default 22)."""
    ports, listens = _port_directives(tree)
    port_set = {p for _, p in ports} or {22}
    if not listens:
        return port_set
    effective: set[int] = set()
    for _, port in listens:
        effective |= port_set if port is None else {port}
    return effective


def required_port(desired: Desired | None) -> int:
    """The port the gateway connects to: 22 for the SSH proxy, `sshd_setup.port` for Access for Infrastructure.

    The finding codes keep their names (PORT-NOT-22 ...); with another required port, "22" reads as it.
    """
    return desired.port if desired is not None else 22


def _check_ports(ctx: Context) -> list[Finding]:
    want = required_port(ctx.desired)
    out: list[Finding] = []
    tree = ctx.before
    ports, listens = _port_directives(tree)
    explicit = [(d, port) for d, port in listens if port is not None]
    effective = listen_ports(tree)
    has_wanted = want in effective
    # Any other port is an error, even beside the gateway's: the gateway connects only to that one, so
    # the other port is a way in that bypasses it; the operator must say it is intended (--allow PORT-NOT-22).
    severity = ERROR
    tail = (
        f"; sshd also listens on {want} (the gateway's port), but this port bypasses the gateway"
        if has_wanted
        else f"; the gateway only connects to port {want}"
    )
    for d, port in ports:
        if port != want:
            out.append(
                Finding(
                    "PORT-NOT-22",
                    severity,
                    f"{quote(d)}: sshd listens on port {port}{tail}",
                    (f"remove it (keep `Port {want}`)" if has_wanted else f"add `Port {want}` (and remove this one)")
                    + ", or pass --allow PORT-NOT-22 if the extra port is intended",
                    d.path,
                    d.lineno,
                )
            )
    for d, port in explicit:
        if port != want:
            out.append(
                Finding(
                    "LISTEN-PORT-NOT-22",
                    severity,
                    f"{quote(d)} binds port {port}{tail}",
                    f"listen on port {want} on the address the gateway reaches, or pass --allow LISTEN-PORT-NOT-22",
                    d.path,
                    d.lineno,
                )
            )
    if not has_wanted:
        first = next((d for d, p in [*ports, *explicit] if p != want), None)
        out.append(
            Finding(
                "NO-PORT-22",
                ERROR,
                f"sshd would not listen on port {want} (effective ports: {', '.join(map(str, sorted(effective)))}); "
                f"the gateway connects to port {want} only, so certificate logins through it cannot reach this host",
                f"make sshd listen on port {want}",
                first.path if first else tree.main_path,
                first.lineno if first else 0,
            )
        )
    out.extend(_check_socket(ctx))
    return out


def _listen_port(entry: str) -> int | None:
    text = entry.strip()
    if "(" in text:
        text, _, kind = text.partition("(")
        if kind.strip(" )") != "Stream":
            return None
        text = text.strip()
    match = re.search(r"(?:^|:)(\d+)$", text)
    return int(match.group(1)) if match else None


def _check_socket(ctx: Context) -> list[Finding]:
    facts = ctx.facts
    if not facts.socket_activated:
        return []
    unit = facts.socket_unit
    name = unit.name if unit is not None else "ssh.socket"
    out: list[Finding] = []
    dropin_streams: list[tuple[str, str]] = []
    for path in sorted(facts.socket_dropins):
        text = facts.socket_dropins[path]
        for raw in text.splitlines():
            key, sep, value = raw.strip().partition("=")
            if sep and key.strip() == "ListenStream":
                dropin_streams.append((path, value.strip()))
        if posixpath.basename(path) == "addresses.conf":
            out.append(
                Finding(
                    "SOCKET-ADDRESSES-DROPIN",
                    WARNING,
                    f"{name} has an addresses.conf drop-in: on this socket-activated host it, not sshd_config's "
                    "Port/ListenAddress, decides where sshd listens",
                    "keep port 22 in it; after changing it run `systemctl daemon-reload` and "
                    f"`systemctl restart {name}`",
                    path,
                )
            )
    entries = list(unit.listen) if unit is not None and unit.listen else []
    source_path = ""
    if not entries and dropin_streams:
        for path, value in dropin_streams:
            if not value:
                entries = []
            else:
                entries.append(value)
            source_path = path
    if not entries:
        return out
    ports = {p for p in (_listen_port(e) for e in entries) if p is not None}
    want = required_port(ctx.desired)
    others = sorted(p for p in ports if p != want)
    if want in ports and others:  # as `Port 2222` beside `Port 22` in sshd_config: a way around the gateway
        out.append(
            Finding(
                "SOCKET-PORT-NOT-22",
                ERROR,
                f"{name} also listens on port {', '.join(map(str, others))} beside {want}: on a socket-activated "
                f"host the socket decides, and this port bypasses the gateway (which connects to {want} only)",
                f"remove the extra ListenStream (then `systemctl daemon-reload` and `systemctl restart {name}`), "
                "or pass --allow SOCKET-PORT-NOT-22 if the extra port is intended",
                source_path or next((p for p, v in dropin_streams if v), ""),
            )
        )
    if want not in ports:
        source_path = source_path or next((p for p, v in dropin_streams if v), "")
        out.append(
            Finding(
                "SOCKET-NO-PORT-22",
                ERROR,
                f"{name} listens on {', '.join(entries)}, not on port {want}: on a socket-activated host the "
                f"socket decides, and the gateway connects to port {want} only",
                f"add ListenStream={want} (drop-in under /etc/systemd/system/{name}.d/), then "
                f"`systemctl daemon-reload` and `systemctl restart {name}`",
                source_path,
            )
        )
    return out


def _check_pending(ctx: Context) -> list[Finding]:
    """Files on disk that the running sshd has not loaded (core/pending.py)."""
    from sshd_setup.core.pending import pending_findings, pending_state
    from sshd_setup.core.service import pid_file

    if not ctx.facts.complete:
        return []
    return pending_findings(ctx.facts, ctx.before, pending_state(ctx.facts, ctx.before, pid_file(ctx.before)))


def _check_start_options(ctx: Context) -> list[Finding]:
    """-p / -o / -f in sshd's start options (core/startopts.py)."""
    from sshd_setup.core.startopts import running_options, start_findings

    return start_findings(running_options(ctx.facts), ctx.main) if ctx.facts.complete else []


def _check_listen_addresses(ctx: Context) -> list[Finding]:
    """A ListenAddress the host does not have (core/hostchecks.py)."""
    from sshd_setup.core.hostchecks import listen_address_findings

    return listen_address_findings(ctx.tree, ctx.facts, ctx.where)


def _check_helpers(ctx: Context) -> list[Finding]:
    """SshdSessionPath / SshdAuthPath that do not exist (core/hostchecks.py)."""
    from sshd_setup.core.hostchecks import helper_findings

    return helper_findings(ctx.tree, ctx.facts, ctx.where) if ctx.facts.complete else []


def _check_socket_daemon_reload(ctx: Context) -> list[Finding]:
    """An ssh socket whose unit files systemd has not loaded yet (core/hostchecks.py)."""
    from sshd_setup.core.hostchecks import daemon_reload_findings

    return daemon_reload_findings(ctx.facts) if ctx.facts.complete else []
