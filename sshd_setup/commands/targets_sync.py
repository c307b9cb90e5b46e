"""`sshd-setup gateway targets sync`: one Access for Infrastructure Target per inventory host.

Order: read and check the inventory (names, addresses, virtual network names), read the state
file, list virtual networks and targets, plan (pure), print the table; then, unless --dry-run or a
conflict: create in batches, update one by one, delete (--prune) in batches, writing the state
file after each step so a failure halfway still remembers what was created.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

import typer

from sshd_setup import exitcodes
from sshd_setup.errors import InputError
from sshd_setup.gateway.client import ApiClient, Log, Retries
from sshd_setup.gateway.targets import (
    Action,
    Wanted,
    create_targets,
    default_state_path,
    delete_targets,
    list_targets,
    plan_sync,
    read_state,
    update_target,
    write_state,
)
from sshd_setup.gateway.virtual_networks import VirtualNetworks, list_virtual_networks
from sshd_setup.inventory import HostEntry, load_inventory

# The API schema we read names no permission for these endpoints (see the README).
PERMISSION = "permission to read virtual networks and to read and edit Access for Infrastructure targets"
# The schema's rule for a target's hostname: alphanumerics, '-' and '.', starting and ending alphanumeric.
_TARGET_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,253}[A-Za-z0-9])?")


@dataclass(frozen=True)
class SyncOptions:
    inventory: Path
    account_id: str
    api_base: str
    token: str
    limit: str | None = None
    dry_run: bool = False
    prune: bool = False
    as_json: bool = False
    state: Path | None = None
    retries: Retries = field(default_factory=Retries)
    log: Log | None = None


def host_address(host: HostEntry, where: str) -> tuple[str, str]:
    """(family, ip): ansible_host when it is an address, else its first IPv4 (or IPv6) on this machine."""
    try:
        ip = ipaddress.ip_address(host.address)
    except ValueError:
        try:
            infos = socket.getaddrinfo(host.address, None, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            reason = exc.strerror if isinstance(exc, socket.gaierror) and exc.strerror else str(exc)
            raise InputError(where, f"cannot resolve {host.address!r} on this machine ({reason})") from None
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
        ip = next((a for a in addresses if a.version == 4), addresses[0])
    return ("ipv4" if ip.version == 4 else "ipv6"), str(ip)


def wanted_targets(hosts: list[HostEntry], vnets: VirtualNetworks, inventory: Path) -> list[Wanted]:
    wanted = []
    for host in hosts:
        where = f"{inventory}: host {host.name}"
        if not _TARGET_HOSTNAME.fullmatch(host.name):
            raise InputError(
                where,
                "a target's hostname (the inventory name) may hold only letters, digits, '-' and '.', "
                "starting and ending with a letter or digit",
            )
        name = host.desired.virtual_network
        if name is None:
            if vnets.default_id is None:
                raise InputError("API answer", "the account lists no default virtual network")
            vnet_id = vnets.default_id
        elif name not in vnets.by_name:
            known = ", ".join(sorted(vnets.by_name)) or "none"
            raise InputError(f"{where}: sshd_setup.virtual_network", f"no virtual network {name!r} (known: {known})")
        else:
            vnet_id = vnets.by_name[name]
        family, ip = host_address(host, where)
        wanted.append(Wanted(host.name, family, ip, vnet_id))
    return wanted


def run_sync(options: SyncOptions) -> int:
    inventory = load_inventory(options.inventory)
    hosts = inventory.select(options.limit)
    state_path = options.state or default_state_path(options.inventory, options.account_id)
    ours = read_state(state_path, options.account_id)
    client = ApiClient(
        options.api_base,
        options.account_id,
        options.token,
        permission=PERMISSION,
        retries=options.retries,
        log=options.log,
    )
    with client as api:
        vnets = list_virtual_networks(api)
        wanted = wanted_targets(hosts, vnets, options.inventory)
        existing = list_targets(api)
        known = {t.target_id for t in existing}
        live_ours = {tid: name for tid, name in ours.items() if tid in known}  # drop targets deleted by hand
        actions = plan_sync(
            wanted,
            existing,
            ours=set(live_ours),
            inventory_names=set(inventory.hosts),
            default_vnet=vnets.default_id,
            prune=options.prune,
        )
        conflicts = [a for a in actions if a.kind == "conflict"]
        if options.dry_run or conflicts:
            _report(actions, vnets, options, done=False)
            if conflicts:
                first = conflicts[0]
                raise InputError(
                    f"{options.inventory}: host {first.hostname}",
                    f"{first.detail}; nothing was changed ({len(conflicts)} conflict(s) in the table above)",
                )
            return exitcodes.OK
        try:
            _execute(api, actions, live_ours)
        finally:
            if live_ours != ours:
                write_state(state_path, options.account_id, live_ours)
    _report(actions, vnets, options, done=True, state=state_path)
    return exitcodes.OK


def _execute(api: ApiClient, actions: list[Action], ours: dict[str, str]) -> None:
    """Send the writes; ``ours`` is updated in place as the API confirms each step."""
    creates = [a for a in actions if a.kind == "create"]
    if creates:
        ours.update(create_targets(api, creates))
    for action in actions:
        if action.kind == "update":
            update_target(api, action)
            if action.target_id in ours:
                ours[action.target_id] = action.hostname
    deletes = [a.target_id for a in actions if a.kind == "delete" and a.target_id]
    if deletes:
        delete_targets(api, deletes)
        for target_id in deletes:
            ours.pop(target_id, None)


def _report(
    actions: list[Action], vnets: VirtualNetworks, options: SyncOptions, *, done: bool, state: Path | None = None
) -> None:
    counts = {kind: sum(1 for a in actions if a.kind == kind) for kind in ("create", "update", "delete", "unchanged")}
    if options.as_json:
        rows = [
            {
                "action": a.kind,
                "hostname": a.hostname,
                "target_id": a.target_id,
                "ip": a.ip,
                "virtual_network": vnets.name_of(a.vnet_id),
                "detail": a.detail,
            }
            for a in actions
        ]
        typer.echo(json.dumps({"schema": 1, "dry_run": options.dry_run, "done": done, "targets": rows}, indent=2))
        return
    header = ("ACTION", "HOSTNAME", "IP", "VIRTUAL NETWORK", "TARGET", "DETAIL")
    lines = [header] + [
        (a.kind, a.hostname, a.ip, vnets.name_of(a.vnet_id), a.target_id or "-", a.detail) for a in actions
    ]
    widths = [max(len(row[i]) for row in lines) for i in range(len(header) - 1)]
    for row in lines:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.items())
    if options.dry_run:
        typer.echo(f"dry run: {summary}; nothing was sent")
    elif done:
        typer.echo(f"{summary}" + (f"; state in {state}" if state else ""))
