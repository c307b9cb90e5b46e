"""The inventory as Ansible's InventoryData holds it: ordered groups and hosts, parent links, variables.

Every variable keeps where it was set (file and key), so a bad value can be named precisely later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sshd_setup.core.names import check_inventory_name
from sshd_setup.errors import InputError

Origin = str  # "file: trail" or "file:line"
Vars = dict[str, tuple[Any, Origin]]


@dataclass
class Group:
    name: str
    where: Origin
    vars: Vars = field(default_factory=dict)
    hosts: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    priority: int = 1


@dataclass
class Host:
    name: str
    where: Origin
    source: str  # the inventory file that first defined it (its directory is inventory_dir)
    vars: Vars = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)  # direct groups, in the order they were added


class InventoryGraph:
    def __init__(self) -> None:
        self.groups: dict[str, Group] = {}
        self.hosts: dict[str, Host] = {}
        self._depths: dict[str, int] | None = None  # computed once the graph is complete
        self.add_group("all", "(implicit)")
        self.add_group("ungrouped", "(implicit)")
        self.add_child("all", "ungrouped", "(implicit)")

    def add_group(self, name: str, where: Origin) -> Group:
        if name not in self.groups:
            problem = check_inventory_name(name)
            if problem:
                raise InputError(where, problem.replace("inventory name", "group name"))
            self.groups[name] = Group(name, where)
        return self.groups[name]

    def add_host(self, name: str, group: str, where: Origin, source: str) -> Host:
        if name not in self.hosts:
            problem = check_inventory_name(name)
            if problem:
                raise InputError(where, problem.replace("inventory name", "host name"))
            self.hosts[name] = Host(name, where, source)
        host = self.hosts[name]
        owner = self.add_group(group, where)
        if name not in owner.hosts:
            owner.hosts.append(name)
        if group not in host.groups:
            host.groups.append(group)
        return host

    def add_child(self, parent: str, child: str, where: Origin) -> None:
        group = self.groups[parent]
        if child == parent or child in self.ancestors(parent):
            raise InputError(where, f"group {child!r} as a child of {parent!r} makes a loop")
        if child not in group.children:
            self._depths = None
            group.children.append(child)
            self.groups[child].parents.append(parent)

    def set_group_var(self, group: str, key: str, value: Any, where: Origin) -> None:
        if key == "ansible_group_priority":
            try:
                self.groups[group].priority = int(value)
            except (TypeError, ValueError):
                raise InputError(where, f"ansible_group_priority must be a number, got {value!r}") from None
            return
        self.groups[group].vars[key] = (value, where)

    def ancestors(self, group: str) -> set[str]:
        found: set[str] = set()
        queue = list(self.groups[group].parents)
        while queue:
            name = queue.pop()
            if name not in found:
                found.add(name)
                queue.extend(self.groups[name].parents)
        return found

    def reconcile(self) -> None:
        """What Ansible does after parsing: orphan groups under `all`, group-less hosts in `ungrouped`."""
        for name in list(self.groups):
            if name != "all" and not self.groups[name].parents:
                self.add_child("all", name, self.groups[name].where)
        ungrouped = self.groups["ungrouped"]
        for host in self.hosts.values():
            others = [g for g in host.groups if g not in ("all", "ungrouped")]
            if others and "ungrouped" in host.groups:
                host.groups.remove("ungrouped")
                ungrouped.hosts.remove(host.name)
            elif not others and "ungrouped" not in host.groups:
                host.groups.append("ungrouped")
                ungrouped.hosts.append(host.name)

    def depths(self) -> dict[str, int]:
        depth: dict[str, int] = {}

        def walk(name: str, level: int) -> None:
            if depth.get(name, -1) >= level:
                return
            depth[name] = level
            for child in self.groups[name].children:
                walk(child, level + 1)

        walk("all", 0)
        return depth

    def groups_of(self, host: str) -> list[str]:
        """Every group the host is in (direct or through children), `all` included, unordered."""
        found: set[str] = {"all"}
        for group in self.hosts[host].groups:
            found.add(group)
            found |= self.ancestors(group)
        return sorted(found)

    def sorted_groups(self, names: list[str]) -> list[str]:
        """Ansible's merge order: by depth, then ansible_group_priority, then name."""
        if self._depths is None:
            self._depths = self.depths()
        depth = self._depths
        return sorted(names, key=lambda g: (depth.get(g, 0), self.groups[g].priority, g))

    def group_hosts(self, name: str) -> list[str]:
        """Hosts of a group and its descendants in Ansible's order (the group's own first, then breadth-first)."""
        order: list[str] = []
        seen: set[str] = set()
        queue = [name]
        visited: set[str] = set()
        while queue:
            group = queue.pop(0)
            if group in visited:
                continue
            visited.add(group)
            for host in self.groups[group].hosts:
                if host not in seen:
                    seen.add(host)
                    order.append(host)
            queue.extend(self.groups[group].children)
        return order
