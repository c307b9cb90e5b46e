"""The fake's Access for Infrastructure endpoints, as the vendor's API schema describes them.

Paths below /accounts/{account}/:
  infrastructure/targets            GET (paginated: page, per_page capped at `max_per_page`;
                                         filters hostname, hostname_contains, ip_v4, ip_v6,
                                         virtual_network_id, ips[], target_ids[]), POST (one)
  infrastructure/targets/batch      PUT [{hostname, ip}] -> the created targets
  infrastructure/targets/batch_delete  POST {target_ids}
  infrastructure/targets/{id}       GET, PUT, DELETE
  teamnet/virtual_networks          GET (filters name, is_default, is_deleted, id)
  gateway/audit_ssh_settings        GET, PUT {public_key}

One IP address + virtual network belongs to one target: a create or update that would take one
another target holds is a 409. A target created without virtual_network_id gets the default
network's id (the schema: "If omitted, the default virtual network ID will be used").
Answers are the vendor's envelope {success, errors, messages, result, result_info?}.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import math
import re
from typing import Any

DEFAULT_VNET = "vnet-default-0000"
CONFLICT_CODE = 18016  # the schema names no code; any 4xx code would do for the client
_TARGET = re.compile(r"^infrastructure/targets/([A-Za-z0-9-]+)$")

Answer = tuple[int, Any, dict[str, str]]


def envelope(result: Any = None, errors: list[dict[str, Any]] | None = None, success: bool = True) -> Any:
    return {"success": success, "errors": errors or [], "messages": [], "result": result}


def error_envelope(code: Any, message: str) -> Any:
    return envelope(None, [{"code": code, "message": message}], success=False)


def _error(status: int, code: int, message: str) -> Answer:
    return status, error_envelope(code, message), {}


class Infra:
    def __init__(self) -> None:
        self.targets: dict[str, dict[str, Any]] = {}
        self.vnets: list[dict[str, Any]] = [
            {"id": DEFAULT_VNET, "name": "default", "is_default_network": True, "comment": "", "deleted_at": None}
        ]
        self.audit_ssh: dict[str, Any] | None = None
        self.max_per_page = 1000
        self._ids = itertools.count(1)
        self._clock = itertools.count(1)

    # -- state helpers for tests -----------------------------------------------------------

    def add_vnet(self, name: str, vnet_id: str, *, deleted: bool = False) -> None:
        self.vnets.append(
            {
                "id": vnet_id,
                "name": name,
                "is_default_network": False,
                "comment": "",
                "deleted_at": "2026-01-01T00:00:00Z" if deleted else None,
            }
        )

    def add_target(self, hostname: str, ip: str, vnet: str | None = None) -> str:
        status, payload, _ = self._create({"hostname": hostname, "ip": {_family(ip): {"ip_addr": ip, **_vnet(vnet)}}})
        assert status == 200, payload
        return str(payload["result"]["id"])

    def by_hostname(self) -> dict[str, dict[str, Any]]:
        return {t["hostname"]: t for t in self.targets.values()}

    # -- routing ---------------------------------------------------------------------------

    @staticmethod
    def serves(path: str) -> bool:
        return path.startswith(("infrastructure/targets", "teamnet/virtual_networks", "gateway/audit_ssh_settings"))

    def answer(self, method: str, path: str, query: dict[str, list[str]], raw: bytes) -> Answer:
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return _error(400, 10001, "request body is not JSON")
        if path == "infrastructure/targets":
            if method == "GET":
                return self._list(query)
            if method == "POST":
                return self._create(body)
        elif path == "infrastructure/targets/batch" and method == "PUT":
            return self._batch_create(body)
        elif path == "infrastructure/targets/batch_delete" and method == "POST":
            return self._batch_delete(body)
        elif (match := _TARGET.match(path)) and match.group(1) not in ("batch", "batch_delete"):
            return self._one(method, match.group(1), body)
        elif path == "teamnet/virtual_networks" and method == "GET":
            return self._vnets(query)
        elif path == "gateway/audit_ssh_settings":
            return self._audit_ssh(method, body)
        return _error(405, 10405, f"method {method} not allowed on {path}")

    # -- targets ---------------------------------------------------------------------------

    def _list(self, query: dict[str, list[str]]) -> Answer:
        def first(name: str) -> str | None:
            return query.get(name, [None])[0]

        rows = sorted(self.targets.values(), key=lambda t: (t["hostname"], t["id"]))
        if (hostname := first("hostname")) is not None:
            rows = [t for t in rows if t["hostname"].lower() == hostname.lower()]
        if (part := first("hostname_contains")) is not None:
            rows = [t for t in rows if part.lower() in t["hostname"].lower()]
        if (vnet := first("virtual_network_id")) is not None:
            rows = [t for t in rows if vnet in (a["virtual_network_id"] for a in t["ip"].values())]
        for family, name in (("ipv4", "ip_v4"), ("ipv6", "ip_v6")):
            if (address := first(name)) is not None:
                rows = [t for t in rows if t["ip"].get(family, {}).get("ip_addr") == address]
        if "ips" in query:
            rows = [t for t in rows if any(a["ip_addr"] in query["ips"] for a in t["ip"].values())]
        if "target_ids" in query:
            rows = [t for t in rows if t["id"] in query["target_ids"]]
        try:
            page = int(first("page") or 1)
            per_page = min(int(first("per_page") or 1000), self.max_per_page)
        except ValueError:
            return _error(400, 10002, "page and per_page must be integers")
        if page < 1 or per_page < 1:
            return _error(400, 10002, "page and per_page must be at least 1")
        chunk = rows[(page - 1) * per_page : page * per_page]
        info = {
            "page": page,
            "per_page": per_page,
            "count": len(chunk),
            "total_count": len(rows),
            "total_pages": max(1, math.ceil(len(rows) / per_page)),
        }
        return 200, {**envelope(chunk), "result_info": info}, {}

    def _check(self, body: Any, exclude: str | None = None) -> tuple[dict[str, Any] | None, Answer | None]:
        """A normalised target body, or the 400/409 answer refusing it."""
        if not isinstance(body, dict) or not isinstance(body.get("hostname"), str):
            return None, _error(400, 10003, "hostname is required")
        hostname = body["hostname"]
        if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,253}[A-Za-z0-9])?", hostname):
            return None, _error(400, 10004, f"invalid hostname {hostname!r}")
        ips = body.get("ip")
        if not isinstance(ips, dict) or not ips or set(ips) - {"ipv4", "ipv6"}:
            return None, _error(400, 10005, "ip must hold ipv4 and/or ipv6")
        normal: dict[str, Any] = {}
        for family, entry in ips.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("ip_addr"), str):
                return None, _error(400, 10005, f"ip.{family}.ip_addr is required")
            try:
                if _family(entry["ip_addr"]) != family:
                    raise ValueError
            except ValueError:
                return None, _error(400, 10006, f"ip.{family}.ip_addr is not an {family} address")
            vnet = entry.get("virtual_network_id") or DEFAULT_VNET
            if not any(v["id"] == vnet and v["deleted_at"] is None for v in self.vnets):
                return None, _error(400, 10007, f"virtual network {vnet} does not exist")
            normal[family] = {"ip_addr": entry["ip_addr"], "virtual_network_id": vnet}
            for other in self.targets.values():
                held = other["ip"].get(family)
                if other["id"] != exclude and held == normal[family]:
                    return None, _error(
                        409,
                        CONFLICT_CODE,
                        f"IP {entry['ip_addr']} in virtual network {vnet} already belongs to target {other['id']}",
                    )
        return {"hostname": hostname, "ip": normal}, None

    def _create(self, body: Any) -> Answer:
        normal, refusal = self._check(body)
        if refusal is not None:
            return refusal
        assert normal is not None
        now = f"2026-12-01T00:00:{next(self._clock):02d}Z"
        target = {"id": f"t-{next(self._ids):04d}", **normal, "created_at": now, "modified_at": now}
        self.targets[target["id"]] = target
        return 200, envelope(target), {}

    def _batch_create(self, body: Any) -> Answer:
        if not isinstance(body, list) or not body:
            return _error(400, 10008, "the body must be a non-empty list of targets")
        saved = dict(self.targets)
        created = []
        for entry in body:
            status, payload, headers = self._create(entry)
            if status != 200:
                self.targets = saved  # all or nothing
                return status, payload, headers
            created.append(payload["result"])
        return 200, envelope(created), {}

    def _batch_delete(self, body: Any) -> Answer:
        ids = body.get("target_ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not ids:
            return _error(400, 10009, "target_ids must be a non-empty list")
        missing = [i for i in ids if i not in self.targets]
        if missing:
            return _error(404, 10010, f"no target {missing[0]}")
        for target_id in ids:
            del self.targets[target_id]
        return 200, envelope(None), {}

    def _one(self, method: str, target_id: str, body: Any) -> Answer:
        if target_id not in self.targets:
            return _error(404, 10010, f"no target {target_id}")
        if method == "GET":
            return 200, envelope(self.targets[target_id]), {}
        if method == "DELETE":
            del self.targets[target_id]
            return 200, envelope(None), {}
        if method == "PUT":
            normal, refusal = self._check(body, exclude=target_id)
            if refusal is not None:
                return refusal
            assert normal is not None
            target = self.targets[target_id]
            target.update(normal, modified_at=f"2026-12-01T00:01:{next(self._clock):02d}Z")
            return 200, envelope(target), {}
        return _error(405, 10405, f"method {method} not allowed")

    # -- virtual networks and audit SSH settings ---------------------------------------------

    def _vnets(self, query: dict[str, list[str]]) -> Answer:
        rows = list(self.vnets)
        if "name" in query:
            rows = [v for v in rows if v["name"] == query["name"][0]]
        if "id" in query:
            rows = [v for v in rows if v["id"] == query["id"][0]]
        if "is_deleted" in query:
            deleted = query["is_deleted"][0] == "true"
            rows = [v for v in rows if (v["deleted_at"] is not None) is deleted]
        if "is_default" in query:
            default = query["is_default"][0] == "true"
            rows = [v for v in rows if v["is_default_network"] is default]
        return 200, envelope(rows), {}

    def _audit_ssh(self, method: str, body: Any) -> Answer:
        if method == "GET":
            return 200, envelope(self.audit_ssh or {"public_key": "", "seed_id": None}), {}
        if method == "PUT":
            if not isinstance(body, dict) or not isinstance(body.get("public_key"), str) or not body["public_key"]:
                return _error(400, 10011, "public_key is required")
            stamp = f"2026-12-01T00:02:{next(self._clock):02d}Z"
            created = (self.audit_ssh or {}).get("created_at", stamp)
            self.audit_ssh = {
                "public_key": body["public_key"],
                "seed_id": "seed-0001",
                "created_at": created,
                "updated_at": stamp,
            }
            return 200, envelope(self.audit_ssh), {}
        return _error(405, 10405, f"method {method} not allowed")


def _family(address: str) -> str:
    return "ipv4" if ipaddress.ip_address(address).version == 4 else "ipv6"


def _vnet(vnet: str | None) -> dict[str, str]:
    return {"virtual_network_id": vnet} if vnet else {}
