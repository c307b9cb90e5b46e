"""Every `-i`: a file (YAML, INI, JSON listing or executable script) or a directory of them, as Ansible picks them.

A directory's entries are read in sorted order, recursively, skipping hidden files, group_vars/, host_vars/
and Ansible's ignored extensions. group_vars/ and host_vars/ are looked up next to each `-i` (the directory
itself, or the directory of a file), again as Ansible does.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from sshd_setup.ansible_inventory.graph import InventoryGraph
from sshd_setup.ansible_inventory.ini import parse_ini
from sshd_setup.ansible_inventory.ranges import split_port
from sshd_setup.ansible_inventory.script import NotAScript, looks_like_listing, parse_json, parse_listing, run_script
from sshd_setup.ansible_inventory.textfiles import is_executable, load_yaml, parse_yaml, read_text
from sshd_setup.ansible_inventory.yamlformat import parse_yaml_inventory
from sshd_setup.errors import InputError

IGNORED_EXTENSIONS = (".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".cfg", ".retry")
_IGNORED = re.compile(
    r"^\.|^host_vars$|^group_vars$|^vars_plugins$|" + "|".join(re.escape(e) + "$" for e in IGNORED_EXTENSIONS)
)
VARS_EXTENSIONS = ("", ".yml", ".yaml", ".json")


def is_host_list(source: Path) -> bool:
    """`-i web1,web2:2222,`: Ansible's host_list source (hosts of `ungrouped`), when no such path exists."""
    return "," in str(source) and not source.exists()


def parse_host_list(source: Path, graph: InventoryGraph) -> None:
    where = f"-i {source}"
    for item in str(source).split(","):
        if item.strip():
            name, port = split_port(item.strip(), where)
            host = graph.add_host(name, "ungrouped", where, where)  # inventory_dir: the current directory
            if port is not None:
                host.vars["ansible_port"] = (port, where)


def inventory_files(source: Path, _seen: frozenset[Path] = frozenset()) -> list[Path]:
    """The files one `-i` stands for, in the order Ansible parses them."""
    if not source.exists() and not source.is_symlink():
        raise InputError(str(source), "no such inventory file or directory")
    if not source.is_dir():
        return [source]
    real = source.resolve()
    if real in _seen:
        raise InputError(str(source), "the inventory directory contains itself (a symlink loop)")
    try:
        entries = sorted(os.listdir(source))
    except OSError as exc:
        raise InputError(str(source), f"cannot list the inventory directory: {exc.strerror or exc}") from None
    files: list[Path] = []
    for entry in entries:
        if not _IGNORED.search(entry):
            path = source / entry
            files.extend(inventory_files(path, _seen | {real}) if path.is_dir() else [path])
    return files


def parse_file(path: Path, graph: InventoryGraph) -> None:
    source = str(path)
    if is_executable(path):
        try:
            data = run_script(path, "--list")
        except NotAScript:
            pass
        else:
            parse_listing(data, f"{path} --list", source, graph, lambda host: run_script(path, "--host", host))
            return
    text = read_text(path)
    if path.suffix == ".toml":
        raise InputError(source, "TOML inventories are not supported (use YAML or INI)")
    if path.suffix in ("", ".yml", ".yaml", ".json"):
        data = parse_json(text, source) if path.suffix == ".json" else _try_yaml(text, source, path.suffix != "")
        if isinstance(data, dict):
            if "_meta" in data or (path.suffix == ".json" and looks_like_listing(data)):
                parse_listing(data, source, source, graph)
            else:
                parse_yaml_inventory(data, source, graph)
            return
        if path.suffix:
            raise InputError(source, f"a YAML inventory must be a mapping of groups, got {type(data).__name__}")
    parse_ini(text, source, graph)


def _try_yaml(text: str, source: str, strict: bool) -> Any:
    """YAML when it parses as such; for a file without extension a failure means: try INI, as Ansible does."""
    if strict:
        return parse_yaml(text, source)
    try:
        return parse_yaml(text, source)
    except InputError:
        if re.search(r"^\s*\[[^\]]+\]\s*$", text, re.M) or not re.search(r"^\s*\w+:(\s|$)", text, re.M):
            return None  # reads as INI
        raise


def vars_basedir(source: Path) -> Path:
    return source if source.is_dir() else source.parent


def vars_files(basedir: Path, kind: str, name: str) -> list[Path]:
    """Ansible's find_vars_files: group_vars/NAME (a file, or a directory read recursively) or NAME.yml/.yaml/.json."""
    directory = basedir / kind
    if not directory.is_dir():
        return []
    for extension in VARS_EXTENSIONS:
        candidate = directory / f"{name}{extension}"
        if candidate.is_dir():
            return _dir_vars_files(candidate)
        if candidate.exists():
            return [candidate]
    return []


def _dir_vars_files(directory: Path) -> list[Path]:
    found: list[Path] = []
    for entry in sorted(os.listdir(directory)):
        if entry.startswith(".") or entry.endswith("~"):
            continue
        path = directory / entry
        if path.is_dir() and not path.suffix:
            found.extend(_dir_vars_files(path))
        elif path.is_file() and path.suffix in VARS_EXTENSIONS:
            found.append(path)
    return found


def load_vars_file(path: Path) -> dict[str, Any]:
    data = load_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(str(path), f"a vars file must be a mapping, got {type(data).__name__}")
    for key in data:
        if not isinstance(key, str):
            raise InputError(str(path), f"a vars file has a non-string key {key!r}")
    return data


def vars_names(basedir: Path, kind: str) -> set[str]:
    """The names group_vars/ (or host_vars/) has an entry for: `web` for web, web.yml, web.json or web/."""
    directory = basedir / kind
    if not directory.is_dir():
        return set()
    try:
        entries = os.listdir(directory)
    except OSError as exc:
        raise InputError(str(directory), f"cannot list: {exc.strerror or exc}") from None
    return {_stem(entry) for entry in entries if not (entry.startswith(".") or entry.endswith("~"))}


def _stem(entry: str) -> str:
    for extension in VARS_EXTENSIONS[1:]:
        entry = entry.removesuffix(extension)
    return entry


def unused_vars_names(basedir: Path, kind: str, known: set[str]) -> list[Path]:
    """group_vars/host_vars entries that name no group/host of the inventory (a typo, most often)."""
    directory = basedir / kind
    if not directory.is_dir():
        return []
    unused: list[Path] = []
    for entry in sorted(os.listdir(directory)):
        if not (entry.startswith(".") or entry.endswith("~")) and _stem(entry) not in known:
            unused.append(directory / entry)
    return unused
