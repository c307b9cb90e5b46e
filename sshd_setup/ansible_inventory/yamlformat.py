"""Ansible's YAML inventory format, as its `yaml` plugin reads it (stricter: odd keys are errors, not warnings)."""

from __future__ import annotations

from typing import Any

from sshd_setup.ansible_inventory.graph import InventoryGraph
from sshd_setup.ansible_inventory.ranges import expand_hosts
from sshd_setup.errors import InputError

_SECTIONS = ("hosts", "vars", "children")


def _mapping(value: Any, where: str, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str) and what in _SECTIONS:
        return {value: None}  # `hosts: web1` means one host, as in Ansible
    if not isinstance(value, dict):
        raise InputError(where, f"{what} must be a mapping, got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str):
            raise InputError(where, f"{what} has a non-string key {key!r} (quote it)")
    return value


def parse_yaml_inventory(data: dict[str, Any], source: str, graph: InventoryGraph) -> None:
    if not data:
        raise InputError(source, "the inventory is empty")
    if "plugin" in data:
        raise InputError(
            source,
            f"an inventory plugin configuration (plugin: {data['plugin']!r}) is not supported: "
            "use `ansible-inventory -i FILE --list > inventory.json` and give sshd-setup that JSON",
        )
    for name in data:
        if not isinstance(name, str):
            raise InputError(source, f"the inventory has a non-string group name {name!r}")
        _group(data[name], name, name, source, graph)


def _group(body: Any, name: str, trail: str, source: str, graph: InventoryGraph) -> None:
    where = f"{source}: {trail}"
    graph.add_group(name, where)
    section = _mapping(body, where, f"group {name!r}")
    for key in section:
        if key not in _SECTIONS:
            raise InputError(f"{where}.{key}", f"unknown group key {key!r} (expected hosts, vars or children)")
    for key in section:  # in the file's order, as Ansible does (it decides the host order)
        if key == "vars":
            for var, value in _mapping(section["vars"], f"{where}.vars", "vars").items():
                graph.set_group_var(name, var, value, f"{where}.vars.{var}")
        elif key == "children":
            for child, child_body in _mapping(section["children"], f"{where}.children", "children").items():
                _group(child_body, child, f"{trail}.children.{child}", source, graph)
                graph.add_child(name, child, f"{where}.children.{child}")
        else:
            _hosts(section["hosts"], name, where, source, graph)


def _hosts(body: Any, group: str, where: str, source: str, graph: InventoryGraph) -> None:
    for pattern, host_vars in _mapping(body, f"{where}.hosts", "hosts").items():
        host_where = f"{where}.hosts.{pattern}"
        names, port = expand_hosts(pattern, host_where)
        values = _mapping(host_vars, host_where, f"host {pattern!r}")
        for host_name in names:
            host = graph.add_host(host_name, group, host_where, source)
            if port is not None:
                host.vars["ansible_port"] = (port, host_where)
            for key, value in values.items():
                host.vars[key] = (value, f"{host_where}.{key}")
