"""Virtual networks (``GET /accounts/{id}/teamnet/virtual_networks``): names to ids, and the default.

The schema lists this endpoint without pagination parameters (filters: ``name``, ``id``,
``is_default``, ``is_deleted``); deleted networks are left out with ``is_deleted=false``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sshd_setup.errors import InputError
from sshd_setup.gateway.client import ApiClient

PATH = "teamnet/virtual_networks"


@dataclass(frozen=True)
class VirtualNetworks:
    by_name: dict[str, str]  # name -> id
    default_id: str | None

    def name_of(self, vnet_id: str | None) -> str:
        if vnet_id is None or vnet_id == self.default_id:
            return "(default)"
        return next((name for name, known in self.by_name.items() if known == vnet_id), vnet_id)


def list_virtual_networks(api: ApiClient) -> VirtualNetworks:
    result = api.call("GET", PATH, params={"is_deleted": "false"})
    if not isinstance(result, list):
        raise InputError("API answer", f"GET {PATH}: result is not a list")
    by_name: dict[str, str] = {}
    default_id = None
    for index, entry in enumerate(result):
        if not (isinstance(entry, dict) and isinstance(entry.get("id"), str) and isinstance(entry.get("name"), str)):
            raise InputError("API answer", f"GET {PATH}: result[{index}] lacks 'id' or 'name'")
        if entry.get("deleted_at"):
            continue
        by_name[entry["name"]] = entry["id"]
        if entry.get("is_default_network") is True:
            default_id = entry["id"]
    return VirtualNetworks(by_name, default_id)
