"""Access for Infrastructure Targets: one per inventory host, kept in step by ``gateway targets sync``.

Endpoints (below /accounts/{id}/): ``GET infrastructure/targets`` (paginated), ``PUT
infrastructure/targets/batch`` (creates a list of ``{hostname, ip}``), ``PUT
infrastructure/targets/{id}`` (one update: the schema has no batch update), ``POST
infrastructure/targets/batch_delete {target_ids}``.

A target has no field for metadata or tags (its schema: id, hostname, ip, created_at,
modified_at), so which targets sshd-setup created is kept in a local state file beside the
inventory; ``--prune`` deletes only those, never a target made by hand or by another tool.

``plan_sync`` is pure (no I/O): it decides create / update / unchanged / delete / conflict.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sshd_setup.atomicfile import write_atomic
from sshd_setup.errors import InputError
from sshd_setup.gateway.client import ApiClient

PATH = "infrastructure/targets"
BATCH_SIZE = 100  # the schema states no limit for the batch endpoints; 100 per request is modest
PER_PAGE = 100
STATE_VERSION = 1

Kind = Literal["create", "update", "unchanged", "delete", "conflict"]


@dataclass(frozen=True)
class Wanted:
    """The target an inventory host should have."""

    hostname: str
    family: str  # "ipv4" | "ipv6"
    ip: str
    vnet_id: str  # resolved: the named network's id, else the default network's


@dataclass(frozen=True)
class Existing:
    target_id: str
    hostname: str
    ips: dict[str, tuple[str, str | None]]  # family -> (ip, virtual network id)


@dataclass(frozen=True)
class Action:
    kind: Kind
    hostname: str
    target_id: str | None = None
    ip: str = ""
    vnet_id: str | None = None
    detail: str = ""
    body: dict[str, Any] = field(default_factory=dict, compare=False)


def target_body(want: Wanted, keep: Existing | None = None) -> dict[str, Any]:
    """The ``{hostname, ip}`` to send; an update keeps the target's other address family."""
    ip: dict[str, Any] = {}
    if keep is not None:
        ip = {fam: {"ip_addr": a, **({"virtual_network_id": v} if v else {})} for fam, (a, v) in keep.ips.items()}
    ip[want.family] = {"ip_addr": want.ip, "virtual_network_id": want.vnet_id}
    return {"hostname": want.hostname, "ip": ip}


def plan_sync(
    wanted: Iterable[Wanted],
    existing: Iterable[Existing],
    *,
    ours: set[str],
    inventory_names: set[str],
    default_vnet: str | None,
    prune: bool,
) -> list[Action]:
    """What to do for every wanted host (in order), then the deletes ``prune`` asks for."""
    targets = list(existing)

    def holds(target: Existing, want: Wanted) -> bool:
        held = target.ips.get(want.family)
        return held is not None and held[0] == want.ip and (held[1] or default_vnet) == want.vnet_id

    names = {n.lower() for n in inventory_names}
    claimed: set[str] = set()
    wanted_by: dict[tuple[str, str, str], str] = {}
    actions: list[Action] = []
    for want in wanted:
        key = (want.family, want.ip, want.vnet_id)
        if key in wanted_by:
            detail = f"{want.ip} ({want.vnet_id}) is also the address of inventory host {wanted_by[key]}"
            actions.append(Action("conflict", want.hostname, None, want.ip, want.vnet_id, detail))
            continue
        wanted_by[key] = want.hostname
        same = [t for t in targets if t.hostname.lower() == want.hostname.lower()]
        if len(same) > 1:
            same = [t for t in same if t.target_id in ours] or same
        holder = next((t for t in targets if holds(t, want)), None)
        where = f"{want.ip} ({want.vnet_id})"
        if len(same) > 1:
            ids = ", ".join(t.target_id for t in same)
            actions.append(Action("conflict", want.hostname, None, want.ip, want.vnet_id, f"several targets: {ids}"))
            continue
        target = same[0] if same else None
        if target is None and holder is not None and holder.target_id in ours and holder.hostname.lower() not in names:
            target = holder  # ours, and its host was renamed in the inventory
        if holder is not None and holder is not target:
            detail = f"{where} already belongs to target {holder.target_id} ({holder.hostname})"
            actions.append(Action("conflict", want.hostname, None, want.ip, want.vnet_id, detail))
            continue
        if target is None:
            actions.append(Action("create", want.hostname, None, want.ip, want.vnet_id, body=target_body(want)))
            continue
        claimed.add(target.target_id)
        if holds(target, want) and target.hostname == want.hostname:
            actions.append(Action("unchanged", want.hostname, target.target_id, want.ip, want.vnet_id))
            continue
        was = target.ips.get(want.family)
        detail = f"was {target.hostname} {was[0] if was else '(no ' + want.family + ')'}"
        body = target_body(want, target)
        actions.append(Action("update", want.hostname, target.target_id, want.ip, want.vnet_id, detail, body))
    if prune:
        for target in targets:
            if target.target_id in ours and target.target_id not in claimed and target.hostname.lower() not in names:
                first = next(iter(target.ips.values()), ("", None))
                detail = "not in the inventory; created by sshd-setup"
                actions.append(Action("delete", target.hostname, target.target_id, first[0], first[1], detail))
    return actions


# --------------------------------------------------------------------------------------------
# The API


def parse_target(entry: Any, where: str) -> Existing:
    if not (isinstance(entry, dict) and isinstance(entry.get("id"), str) and isinstance(entry.get("hostname"), str)):
        raise InputError("API answer", f"{where} is not a target with 'id' and 'hostname'")
    ips: dict[str, tuple[str, str | None]] = {}
    raw = entry.get("ip")
    if isinstance(raw, dict):
        for family in ("ipv4", "ipv6"):
            address = raw.get(family)
            if isinstance(address, dict) and isinstance(address.get("ip_addr"), str):
                vnet = address.get("virtual_network_id")
                ips[family] = (address["ip_addr"], vnet if isinstance(vnet, str) else None)
    return Existing(entry["id"], entry["hostname"], ips)


def list_targets(api: ApiClient) -> list[Existing]:
    entries = api.paginate(PATH, per_page=PER_PAGE)
    return [parse_target(entry, f"GET {PATH}: result[{index}]") for index, entry in enumerate(entries)]


def create_targets(api: ApiClient, actions: list[Action]) -> dict[str, str]:
    """Create in batches; return {target id: hostname} of every target the API says it created."""
    created: dict[str, str] = {}
    for start in range(0, len(actions), BATCH_SIZE):
        chunk = actions[start : start + BATCH_SIZE]
        result = api.call("PUT", f"{PATH}/batch", body=[a.body for a in chunk])
        entries = result if isinstance(result, list) else []
        made = [parse_target(entry, f"PUT {PATH}/batch: result[{i}]") for i, entry in enumerate(entries)]
        created.update({t.target_id: t.hostname for t in made})
        missing = {a.hostname.lower() for a in chunk} - {t.hostname.lower() for t in made}
        if missing:
            raise InputError(
                "API answer",
                f"PUT {PATH}/batch did not list the created target(s) {', '.join(sorted(missing))}; "
                "run sync again to see what exists",
            )
    return created


def update_target(api: ApiClient, action: Action) -> None:
    api.call("PUT", f"{PATH}/{action.target_id}", body=action.body)


def delete_targets(api: ApiClient, target_ids: list[str]) -> None:
    for start in range(0, len(target_ids), BATCH_SIZE):
        api.call("POST", f"{PATH}/batch_delete", body={"target_ids": target_ids[start : start + BATCH_SIZE]})


# --------------------------------------------------------------------------------------------
# The state file: which targets sshd-setup created, per account


def default_state_path(inventory: Path, account_id: str) -> Path:
    return inventory.parent / ".sshd-setup" / f"targets-{account_id}.json"


def read_state(path: Path, account_id: str) -> dict[str, str]:
    """{target id: hostname} sshd-setup created in this account ({} when there is no file)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise InputError(str(path), f"cannot read the targets state file ({exc})") from None
    targets = data.get("targets") if isinstance(data, dict) else None
    if (
        not isinstance(data, dict)
        or data.get("version") != STATE_VERSION
        or data.get("account_id") != account_id
        or not isinstance(targets, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in targets.items())
    ):
        raise InputError(str(path), f"not a targets state file of account {account_id} (version {STATE_VERSION})")
    return dict(targets)


def write_state(path: Path, account_id: str, targets: dict[str, str]) -> None:
    """Atomically (temp file, fsync, rename), mode 0644."""
    text = json.dumps(
        {"version": STATE_VERSION, "account_id": account_id, "targets": dict(sorted(targets.items()))}, indent=2
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text + "\n", 0o644)
