"""Ansible-style inventories (YAML and INI, with group_vars/ and host_vars/), validated up front.

Variables merge the way Ansible merges them: `all` first, then groups from the shallowest to the deepest
(ties by name), then the host. Our own settings live in one variable, `sshd_setup`, merged per key.
Every problem is an InputError naming the file and the key, raised before any host is contacted.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sshd_setup.core.desired import Desired, build_desired, check_settings_fragment
from sshd_setup.core.names import check_hostname, check_inventory_name, check_user
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

    @property
    def is_local(self) -> bool:
        return self.connection == "local"


@dataclass
class Inventory:
    path: Path
    hosts: dict[str, HostEntry] = field(default_factory=dict)
    groups: dict[str, set[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def select(self, limit: str | None) -> list[HostEntry]:
        names = select_hosts(limit, list(self.hosts), self.groups)
        return [self.hosts[name] for name in names]


# ---------------------------------------------------------------- raw structure


@dataclass
class _Group:
    name: str
    where: str
    vars: dict[str, Any] = field(default_factory=dict)
    hosts: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    children: list[str] = field(default_factory=list)
    parents: set[str] = field(default_factory=set)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of silently keeping the last."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen[key] = loader.construct_object(value_node, deep=True)
    return seen


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _load_yaml(path: Path) -> Any:
    text = read_input_text(path, str(path))
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(where, f"invalid YAML: {problem}") from None


def _as_dict(value: Any, where: str, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(where, f"{what} must be a mapping, got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str):
            raise InputError(where, f"{what} has a non-string key {key!r}")
    return value


def _parse_yaml_inventory(path: Path, data: Any, groups: dict[str, _Group]) -> None:
    top = _as_dict(data, str(path), "the inventory")
    if not top:
        raise InputError(str(path), "the inventory is empty")
    groups.setdefault("all", _Group("all", f"{path}: all"))
    for name, body in top.items():
        _parse_yaml_group(path, name, body, name, groups, parent=None if name == "all" else "all")


def _parse_yaml_group(
    path: Path, name: str, body: Any, trail: str, groups: dict[str, _Group], parent: str | None
) -> None:
    where = f"{path}: {trail}"
    problem = check_inventory_name(name)
    if problem:
        raise InputError(where, problem.replace("inventory name", "group name"))
    group = groups.setdefault(name, _Group(name, where))
    if parent is not None and name not in groups[parent].children:
        groups[parent].children.append(name)
        group.parents.add(parent)
    section = _as_dict(body, where, f"group {name!r}")
    for key in section:
        if key not in ("hosts", "vars", "children"):
            raise InputError(f"{where}.{key}", f"unknown group key {key!r} (expected hosts, vars or children)")
    group.vars.update(_as_dict(section.get("vars"), f"{where}.vars", "vars"))
    hosts = _as_dict(section.get("hosts"), f"{where}.hosts", "hosts")
    for host, host_vars in hosts.items():
        problem = check_inventory_name(host)
        if problem:
            raise InputError(f"{where}.hosts", problem.replace("inventory name", "host name"))
        host_where = f"{where}.hosts.{host}"
        group.hosts[host] = (host_where, _as_dict(host_vars, host_where, f"host {host!r}"))
    children = _as_dict(section.get("children"), f"{where}.children", "children")
    for child, child_body in children.items():
        _parse_yaml_group(path, child, child_body, f"{trail}.children.{child}", groups, parent=name)


def _ini_value(raw: str, where: str) -> Any:
    try:
        return yaml.load(raw, Loader=_UniqueKeyLoader)
    except yaml.YAMLError:
        raise InputError(where, f"cannot read value {raw!r}") from None


def _ini_assignments(text: str, where: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for match in re.finditer(r"(\w+)=('[^']*'|\"[^\"]*\"|\{.*\}|\[.*\]|\S+)", text):
        result[match.group(1)] = _ini_value(match.group(2), where)
    leftover = re.sub(r"(\w+)=('[^']*'|\"[^\"]*\"|\{.*\}|\[.*\]|\S+)", "", text).strip()
    if leftover:
        raise InputError(where, f"cannot read {leftover!r} (expected key=value)")
    return result


def _parse_ini_inventory(path: Path, text: str, groups: dict[str, _Group]) -> None:
    groups.setdefault("all", _Group("all", f"{path}: all"))
    section, kind = "ungrouped", "hosts"
    for number, raw in enumerate(text.splitlines(), start=1):
        where = f"{path}:{number}"
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        header = re.fullmatch(r"\[([^\]:]+)(?::(vars|children))?\]", line)
        if header:
            section, kind = header.group(1), header.group(2) or "hosts"
            problem = check_inventory_name(section)
            if problem:
                raise InputError(where, problem.replace("inventory name", "group name"))
            group = groups.setdefault(section, _Group(section, where))
            if section != "all" and not group.parents:
                group.parents.add("all")
                groups["all"].children.append(section)
            continue
        if line.startswith("["):
            raise InputError(where, f"bad section header {line!r}")
        group = groups.setdefault(section, _Group(section, where))
        if section != "all" and not group.parents:
            group.parents.add("all")
            groups["all"].children.append(section)
        if kind == "vars":
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                raise InputError(where, f"expected key=value in [{section}:vars]")
            group.vars[key.strip()] = _ini_value(value.strip(), where)
        elif kind == "children":
            problem = check_inventory_name(line)
            if problem:
                raise InputError(where, problem.replace("inventory name", "group name"))
            child = groups.setdefault(line, _Group(line, where))
            if "all" in child.parents and line not in ("all",):
                child.parents.discard("all")
                if line in groups["all"].children:
                    groups["all"].children.remove(line)
            child.parents.add(section)
            group.children.append(line)
        else:
            name, _, rest = line.partition(" ")
            problem = check_inventory_name(name)
            if problem:
                raise InputError(where, problem.replace("inventory name", "host name"))
            group.hosts[name] = (where, _ini_assignments(rest, where))


def _load_vars_dirs(
    path: Path, groups: dict[str, _Group], host_vars: dict[str, list[tuple[str, dict[str, Any]]]]
) -> None:
    base = path.parent
    for kind in ("group_vars", "host_vars"):
        directory = base / kind
        if not directory.is_dir():
            continue
        for entry in sorted(directory.iterdir()):
            files = sorted(entry.glob("*.y*ml")) if entry.is_dir() else [entry]
            name = entry.name if entry.is_dir() else entry.name.rsplit(".", 1)[0]
            for file in files:
                if file.suffix not in (".yml", ".yaml"):
                    continue
                data = _as_dict(_load_yaml(file), str(file), "a vars file")
                if kind == "group_vars":
                    if name not in groups:
                        continue  # Ansible ignores vars of groups the inventory does not have
                    groups[name].vars.update(data)
                    groups[name].vars.setdefault("__files__", []).append(str(file))
                else:
                    host_vars.setdefault(name, []).append((str(file), data))


# ---------------------------------------------------------------- merging


def _depths(groups: dict[str, _Group]) -> dict[str, int]:
    depth: dict[str, int] = {"all": 0}

    def walk(name: str, level: int, trail: tuple[str, ...]) -> None:
        if name in trail:
            raise InputError(groups[name].where, f"group {name!r} is its own ancestor ({' → '.join((*trail, name))})")
        depth[name] = max(depth.get(name, 0), level)
        for child in groups[name].children:
            walk(child, level + 1, (*trail, name))

    walk("all", 0, ())
    return depth


def _groups_of(host: str, groups: dict[str, _Group]) -> set[str]:
    direct = {name for name, group in groups.items() if host in group.hosts}
    found = set(direct) | {"all"}
    queue = list(direct)
    while queue:
        for parent in groups[queue.pop()].parents:
            if parent not in found:
                found.add(parent)
                queue.append(parent)
    return found


def _merge_settings(target: dict[str, Any], fragment: Any, where: str) -> None:
    check_settings_fragment(fragment, where)
    if fragment:
        for key, value in fragment.items():
            target[key] = (value, where)


def load_inventory(path: Path) -> Inventory:
    if not path.exists():
        raise InputError(str(path), "no such inventory file")
    groups: dict[str, _Group] = {}
    text = read_input_text(path, str(path), errors="replace")
    if (
        path.suffix in (".ini", ".cfg", "")
        and not text.lstrip().startswith(("all:", "---"))
        and (re.search(r"^\s*\[", text, re.M) or "=" in text or not text.strip().endswith(":"))
    ):
        _parse_ini_inventory(path, text, groups)
    else:
        _parse_yaml_inventory(path, _load_yaml(path), groups)
    host_vars: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    _load_vars_dirs(path, groups, host_vars)
    depth = _depths(groups)
    inventory = Inventory(path=path)
    inventory.groups = {name: set() for name in groups}
    all_hosts: list[str] = []
    for group in groups.values():
        for host in group.hosts:
            if host not in all_hosts:
                all_hosts.append(host)
    for host in all_hosts:
        member_of = _groups_of(host, groups)
        for group_name in member_of:
            inventory.groups[group_name].add(host)
        ordered = sorted(member_of, key=lambda g: (depth.get(g, 0), g))
        merged_vars: dict[str, Any] = {}
        settings: dict[str, Any] = {}
        for group_name in ordered:
            group = groups[group_name]
            for key, value in group.vars.items():
                if key == SETTINGS_VAR:
                    _merge_settings(settings, value, f"{group.where}.vars.{SETTINGS_VAR}")
                elif key != "__files__":
                    merged_vars[key] = value
        for group in groups.values():
            if host in group.hosts:
                where, hvars = group.hosts[host]
                for key, value in hvars.items():
                    if key == SETTINGS_VAR:
                        _merge_settings(settings, value, f"{where}.{SETTINGS_VAR}")
                    else:
                        merged_vars[key] = value
        for file, hvars in host_vars.get(host, []):
            for key, value in hvars.items():
                if key == SETTINGS_VAR:
                    _merge_settings(settings, value, f"{file}: {SETTINGS_VAR}")
                else:
                    merged_vars[key] = value
        inventory.hosts[host] = _host_entry(path, host, sorted(member_of - {"all"}), merged_vars, settings)
        inventory.warnings.extend(inventory.hosts[host].desired.warnings)
    if not inventory.hosts:
        raise InputError(str(path), "the inventory defines no host")
    inventory.warnings = list(dict.fromkeys(inventory.warnings))
    return inventory


def _bool(value: Any, where: str, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise InputError(where, f"{key} must be true or false, got {value!r}")


def _host_entry(path: Path, host: str, groups: list[str], hvars: dict[str, Any], settings: dict[str, Any]) -> HostEntry:
    where = f"{path}: host {host}"
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
    ssh_args: list[str] = []
    for key in ("ansible_ssh_common_args", "ansible_ssh_extra_args"):
        value = hvars.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or "\n" in value:
            raise InputError(f"{where}.{key}", "must be a one-line string")
        ssh_args.extend(value.split())

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
        ssh_args=tuple(ssh_args),
        desired=desired,
    )


# ---------------------------------------------------------------- --limit


def select_hosts(limit: str | None, hosts: list[str], groups: dict[str, set[str]]) -> list[str]:
    """Ansible's host patterns: names, groups, globs, `a,b` or `a:b`, `!exclude`, `&intersection`."""
    if limit is None or limit.strip() in ("", "all", "*"):
        return list(hosts)
    terms = [t for t in re.split(r"[,:]", limit) if t.strip()]
    if not terms:
        raise InputError("--limit", f"empty host pattern {limit!r}")
    selected: set[str] = set()
    positives = [t for t in terms if not t.startswith(("!", "&"))]
    for term in positives:
        selected |= _pattern_hosts(term.strip(), hosts, groups)
    if not positives:
        selected = set(hosts)
    for term in terms:
        if term.startswith("&"):
            selected &= _pattern_hosts(term[1:].strip(), hosts, groups)
        elif term.startswith("!"):
            selected -= _pattern_hosts(term[1:].strip(), hosts, groups)
    if not selected:
        raise InputError("--limit", f"pattern {limit!r} matches no host in the inventory")
    return [host for host in hosts if host in selected]


def _pattern_hosts(term: str, hosts: list[str], groups: dict[str, set[str]]) -> set[str]:
    if term in groups:
        return set(groups[term])
    if term in hosts:
        return {term}
    if term.startswith("~"):
        try:
            regex = re.compile(term[1:])
        except re.error as exc:
            raise InputError("--limit", f"bad regular expression {term[1:]!r}: {exc}") from None
        return {h for h in hosts if regex.search(h)}
    matched = {h for h in hosts if fnmatch.fnmatchcase(h, term)}
    for name, members in groups.items():
        if fnmatch.fnmatchcase(name, term):
            matched |= members
    if not matched:
        raise InputError("--limit", f"{term!r} names no host or group in the inventory")
    return matched
