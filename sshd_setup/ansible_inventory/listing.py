"""What `ansible-inventory --list` and `--graph` print, from our reading of the inventory."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from sshd_setup.ansible_inventory.graph import InventoryGraph


def list_inventory(
    graph: InventoryGraph, hostvars: Mapping[str, dict[str, Any]], available: Collection[str]
) -> dict[str, Any]:
    """ansible-inventory's json_inventory: groups from `all` down (hosts, children; empty ones left out)."""
    results: dict[str, Any] = {}
    seen: set[str] = set()

    def visit(name: str) -> None:
        group = graph.groups[name]
        entry: dict[str, Any] = {}
        if name != "all":
            members = [h for h in group.hosts if h in available]
            if members:
                entry["hosts"] = members
        if group.children:
            entry["children"] = list(group.children)
        if entry:
            results[name] = entry
        for child in group.children:
            if child not in seen:
                seen.add(child)
                visit(child)

    visit("all")
    ordered = {name: results[name] for name in results}
    ordered["_meta"] = {
        "hostvars": {host: hostvars[host] for host in graph.hosts if host in available and hostvars.get(host)},
        "profile": "inventory_legacy",
    }
    return ordered


def graph_lines(graph: InventoryGraph, start: str, available: Collection[str]) -> list[str]:
    """ansible-inventory --graph: `@group:` lines, children first, then hosts, indented with `  |--`."""

    def name_at(text: str, depth: int) -> str:
        return "  |" * depth + "--" + text if depth else text

    def walk(name: str, depth: int) -> list[str]:
        lines = [name_at(f"@{name}:", depth)]
        for child in graph.groups[name].children:
            lines.extend(walk(child, depth + 1))
        if name != "all":
            lines.extend(name_at(host, depth + 1) for host in graph.groups[name].hosts if host in available)
        return lines

    return walk(start, 0)
