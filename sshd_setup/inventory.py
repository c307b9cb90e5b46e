"""Ansible inventories (every -i: YAML, INI, JSON, scripts, directories; group_vars/ and host_vars/), validated.

Reading them is sshd_setup.ansible_inventory's job. Variables merge the way Ansible merges them: `all`, then
groups from the shallowest to the deepest (ties by priority, then name), then group_vars/all and
group_vars/<group> files, then the host, then host_vars/<host>. Our own settings live in one variable,
`sshd_setup`, merged per key in the same order.
Every problem is an InputError naming the file and the key, raised before any host is contacted.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sshd_setup.ansible_inventory.graph import InventoryGraph
from sshd_setup.ansible_inventory.patterns import select_hosts
from sshd_setup.ansible_inventory.sources import (
    inventory_files,
    is_host_list,
    load_vars_file,
    parse_file,
    parse_host_list,
    unused_vars_names,
    vars_basedir,
    vars_files,
    vars_names,
)
from sshd_setup.ansible_inventory.textfiles import parse_yaml
from sshd_setup.connection_vars import ConnectionVars, read_connection_vars, with_aliases
from sshd_setup.core.desired import Desired, build_desired, check_settings_fragment
from sshd_setup.core.names import check_hostname, check_user
from sshd_setup.errors import InputError
from sshd_setup.inputfile import MAX_KEY_FILE_BYTES, check_input_file, read_input_text

SETTINGS_VAR = "sshd_setup"
CONNECTIONS = {"ssh": "ssh", "smart": "ssh", "paramiko": "ssh", "local": "local"}
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


@dataclass(frozen=True)
class HostEntry:
    name: str
    groups: tuple[str, ...]
    address: str
    port: int | None
    user: str | None
    key_file: str | None
    become: bool
    connection: str
    ssh_args: tuple[str, ...]
    desired: Desired
    connection_vars: ConnectionVars = field(default_factory=ConnectionVars)
    """Proxy, passwords, timeout, host key checking: the rest of the ansible_* connection variables."""

    @property
    def is_local(self) -> bool:
        return self.connection == "local"


@dataclass
class Inventory:
    path: Path  # the first -i
    sources: list[Path] = field(default_factory=list)
    graph: InventoryGraph = field(default_factory=InventoryGraph)
    hosts: dict[str, HostEntry] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)  # every member, in Ansible's order
    vars: dict[str, dict[str, Any]] = field(default_factory=dict)  # merged host vars, sshd_setup apart
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)  # sshd_setup as merged, per host
    warnings: list[str] = field(default_factory=list)

    def select(self, limit: str | None) -> list[HostEntry]:
        names = select_hosts(limit, list(self.hosts), self.groups)
        return [self.hosts[name] for name in names]


# ---------------------------------------------------------------- merging


def _settings_value(value: Any, where: str) -> Any:
    """INI gives `sshd_setup={...}` as text when it is not a Python literal: read it as YAML (JSON) then."""
    if isinstance(value, str):
        return parse_yaml(value, where)
    return value


class _VarsFiles:
    """group_vars/ and host_vars/ next to each source, each file read once."""

    def __init__(self, sources: list[Path]) -> None:
        self.basedirs = list(dict.fromkeys(vars_basedir(s) for s in sources if not is_host_list(s)))
        self._cache: dict[Path, dict[str, Any]] = {}
        self._found: dict[tuple[Path, str, str], list[Path]] = {}
        self._present: dict[tuple[Path, str], set[str]] = {}

    def layers(self, kind: str, names: list[str]) -> list[tuple[str, dict[str, Any]]]:
        """Per source (in -i order), per name: every file, as Ansible's host_group_vars plugin merges them."""
        found: list[tuple[str, dict[str, Any]]] = []
        for basedir in self.basedirs:
            for name in names:
                if (basedir, kind) not in self._present:
                    self._present[basedir, kind] = vars_names(basedir, kind)
                if name not in self._present[basedir, kind]:
                    continue
                if (basedir, kind, name) not in self._found:
                    self._found[basedir, kind, name] = vars_files(basedir, kind, name)
                for file in self._found[basedir, kind, name]:
                    if file not in self._cache:
                        self._cache[file] = load_vars_file(file)
                    found.append((str(file), self._cache[file]))
        return found


def _host_layers(graph: InventoryGraph, files: _VarsFiles, host: str) -> list[tuple[str, Any, str]]:
    """(key, value, where) in Ansible's precedence, lowest first: all, groups (by depth), group_vars/all,
    group_vars/<group>, the host's own vars, host_vars/<host>."""
    groups = graph.sorted_groups([g for g in graph.groups_of(host) if g != "all"])
    layers: list[tuple[str, Any, str]] = []
    for name in ["all", *groups]:
        layers.extend((key, value, where) for key, (value, where) in graph.groups[name].vars.items())
    for kind, names in (("group_vars", ["all"]), ("group_vars", groups)):
        for file, data in files.layers(kind, names):
            layers.extend((key, value, f"{file}: {key}") for key, value in data.items())
    layers.extend((key, value, where) for key, (value, where) in graph.hosts[host].vars.items())
    for file, data in files.layers("host_vars", [host]):
        layers.extend((key, value, f"{file}: {key}") for key, value in data.items())
    return layers


def _relocated(exc: InputError, prefix: str, origins: dict[str, str]) -> InputError:
    """Name the file and key a bad connection variable really came from (a group_vars file, say)."""
    key = exc.where.removeprefix(prefix)
    if key == "ansible_ssh_private_key_file" and key not in origins:
        key = "ansible_private_key_file"
    if exc.where.startswith(prefix) and key in origins:
        return InputError(origins[key], exc.problem)
    return exc


def _refuse_templates(merged_vars: dict[str, Any], origins: dict[str, str]) -> None:
    """Ansible would render `{{ ... }}` in a connection variable; we do not, so we must not use it as text."""
    for key, value in merged_vars.items():
        if key.startswith("ansible_") and isinstance(value, str) and ("{{" in value or "{%" in value):
            raise InputError(origins[key], f"Jinja templates are not evaluated by sshd-setup: give {key} its value")


def read_graph(sources: list[Path]) -> InventoryGraph:
    graph = InventoryGraph()
    for source in sources:
        if is_host_list(source):
            parse_host_list(source, graph)
            continue
        files = inventory_files(source)
        if not files:
            raise InputError(str(source), "the inventory directory has no inventory file")
        for file in files:
            parse_file(file, graph)
    graph.reconcile()
    return graph


def load_inventory(sources: Path | Sequence[Path]) -> Inventory:
    """Every -i in order, merged as Ansible merges them; hosts validated into HostEntry."""
    paths = [sources] if isinstance(sources, Path) else list(sources)
    if not paths:
        raise InputError("-i", "no inventory given")
    graph = read_graph(paths)
    if not graph.hosts:
        raise InputError(", ".join(map(str, paths)), "the inventory defines no host")
    files = _VarsFiles(paths)
    inventory = Inventory(path=paths[0], sources=paths, graph=graph)
    inventory.groups = {name: graph.group_hosts(name) for name in graph.groups}
    for host in graph.hosts:
        merged_vars: dict[str, Any] = {}
        origins: dict[str, str] = {}
        settings: dict[str, Any] = {}
        for key, value, where in _host_layers(graph, files, host):
            if key == SETTINGS_VAR:
                _merge_settings(settings, _settings_value(value, where), where)
            else:
                merged_vars[key], origins[key] = value, where
        _refuse_templates(merged_vars, origins)
        inventory.vars[host] = merged_vars
        source = Path(graph.hosts[host].source)
        member_of = sorted(set(graph.groups_of(host)) - {"all"})
        try:
            entry = _host_entry(source, host, member_of, merged_vars, settings)
        except InputError as exc:
            raise _relocated(exc, f"{source}: host {host}.", origins) from None
        inventory.hosts[host] = entry
        inventory.settings[host] = {key: value for key, (value, _) in settings.items()}
        inventory.warnings.extend(entry.desired.warnings)
        inventory.warnings.extend(entry.connection_vars.warnings)
    for basedir in files.basedirs:
        for kind, known in (("group_vars", set(graph.groups)), ("host_vars", set(graph.hosts))):
            for unused in unused_vars_names(basedir, kind, known):
                what = "group" if kind == "group_vars" else "host"
                inventory.warnings.append(f"{unused}: names no {what} of the inventory (ignored)")
    inventory.warnings = list(dict.fromkeys(inventory.warnings))
    return inventory


def _merge_settings(target: dict[str, Any], fragment: Any, where: str) -> None:
    check_settings_fragment(fragment, where)
    if fragment:
        for key, value in fragment.items():
            target[key] = (value, where)


def _bool(value: Any, where: str, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise InputError(where, f"{key} must be true or false, got {value!r}")


def _host_entry(path: Path, host: str, groups: list[str], hvars: dict[str, Any], settings: dict[str, Any]) -> HostEntry:
    where = f"{path}: host {host}"
    hvars = with_aliases(hvars)
    address = hvars.get("ansible_host", host)
    if not isinstance(address, str) or check_hostname(address):
        raise InputError(f"{where}.ansible_host", check_hostname(str(address)) or "must be a string")
    port = hvars.get("ansible_port")
    if port is not None:
        if isinstance(port, str) and port.isdigit():
            port = int(port)
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise InputError(f"{where}.ansible_port", f"must be a port number (1-65535), got {port!r}")
    user = hvars.get("ansible_user")
    if user is not None and (not isinstance(user, str) or check_user(user)):
        raise InputError(f"{where}.ansible_user", check_user(str(user)) or "must be a string")
    key_file = hvars.get("ansible_ssh_private_key_file", hvars.get("ansible_private_key_file"))
    if key_file is not None:
        if not isinstance(key_file, str) or "\n" in key_file or not key_file.strip():
            raise InputError(f"{where}.ansible_ssh_private_key_file", "must be a file name")
        key_file = os.path.expanduser(key_file)
        check_input_file(key_file, f"{where}.ansible_ssh_private_key_file")
    become = _bool(hvars.get("ansible_become", False), f"{where}.ansible_become", "ansible_become")
    connection = hvars.get("ansible_connection", "ssh")
    if connection not in CONNECTIONS:
        raise InputError(f"{where}.ansible_connection", f"unsupported connection {connection!r} (use ssh or local)")
    connection_vars = read_connection_vars(hvars, where, become and (connection == "local" or user != "root"))
    if key_file is None and connection_vars.identity_file:
        key_file = os.path.expanduser(connection_vars.identity_file)

    values = {key: value for key, (value, _) in settings.items()}
    setting_where = {key: fragment_where for key, (_, fragment_where) in settings.items()}

    def read_keys_file(name: str) -> tuple[str, str]:
        origin = setting_where.get("ca_keys_file", where)
        file = Path(name) if os.path.isabs(name) else path.parent / name
        text = read_input_text(file, f"{origin}.ca_keys_file", limit=MAX_KEY_FILE_BYTES)
        return text, f"{origin}.ca_keys_file ({file})"

    desired = build_desired(values, f"{where}: {SETTINGS_VAR}", read_keys_file, setting_where)
    return HostEntry(
        name=host,
        groups=tuple(groups),
        address=address,
        port=port,
        user=user,
        key_file=key_file,
        become=become,
        connection=CONNECTIONS[connection],
        ssh_args=connection_vars.ssh_args,
        desired=desired,
        connection_vars=connection_vars,
    )


__all__ = ["HostEntry", "Inventory", "load_inventory", "read_graph", "select_hosts"]
