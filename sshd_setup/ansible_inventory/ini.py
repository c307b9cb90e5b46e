"""Ansible's INI inventory format, as its `ini` plugin reads it.

Lines before any section are hosts of `ungrouped`; `[g]` hosts, `[g:vars]` key=value, `[g:children]` group
names (declared before or after). Values are Python literals when they parse as one, else strings.
"""

from __future__ import annotations

import ast
import re
import shlex
import warnings
from typing import Any

from sshd_setup.ansible_inventory.graph import InventoryGraph
from sshd_setup.ansible_inventory.ranges import expand_hosts
from sshd_setup.errors import InputError

_SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$")
_GROUP_NAME = re.compile(r"^([^:\]\s]+)\s*(?:#.*)?$")


def literal(text: str) -> Any:
    """Ansible's _parse_value: a Python literal if it is one (tuples and sets become lists), else the text."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text
    return _coerce(value)


def _coerce(value: Any) -> Any:
    if isinstance(value, (list, tuple, set)):
        return [_coerce(item) for item in value]
    if isinstance(value, dict):
        return {_coerce(key): _coerce(item) for key, item in value.items()}
    if value is ...:
        return "..."
    if isinstance(value, complex):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def parse_ini(text: str, source: str, graph: InventoryGraph) -> None:
    group, state = "ungrouped", "hosts"
    pending: dict[str, tuple[str, list[str]]] = {}  # child named before it is declared: where, parents
    vars_only: dict[str, str] = {}  # [g:vars] of a group not declared (yet)
    for number, raw in enumerate(text.splitlines(), start=1):
        where = f"{source}:{number}"
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        header = _SECTION.match(line)
        if header:
            group, state = header.group(1), header.group(2) or "hosts"
            if state not in ("hosts", "vars", "children"):
                raise InputError(
                    where, f"section [{group}:{state}] has an unknown type {state!r} (hosts, vars or children)"
                )
            if group not in graph.groups and state == "vars" and group not in pending:
                vars_only.setdefault(group, where)
            graph.add_group(group, where)
            if state != "vars":
                vars_only.pop(group, None)
                if group in pending:
                    for parent in pending.pop(group)[1]:
                        graph.add_child(parent, group, where)
            continue
        if line.startswith("[") and line.endswith("]"):
            raise InputError(where, f"bad section header {line!r} (no spaces or other characters allowed)")
        if state == "hosts":
            _host_line(line, group, where, source, graph)
        elif state == "vars":
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                raise InputError(where, f"expected key=value in [{group}:vars], got {line!r}")
            graph.set_group_var(group, key.strip(), literal(value.strip()), f"{where}: {key.strip()}")
        else:
            named = _GROUP_NAME.match(line)
            if not named:
                raise InputError(where, f"expected a group name in [{group}:children], got {line!r}")
            child = named.group(1)
            if child in graph.groups:
                graph.add_child(group, child, where)
            else:
                pending.setdefault(child, (where, []))[1].append(group)
    for child, (where, parents) in pending.items():
        raise InputError(where, f"[{parents[-1]}:children] names group {child!r}, which is never declared")
    for name, where in vars_only.items():
        raise InputError(where, f"[{name}:vars] for group {name!r}, which is never declared")


def _host_line(line: str, group: str, where: str, source: str, graph: InventoryGraph) -> None:
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError as exc:
        raise InputError(where, f"cannot read host line: {exc}") from None
    if not tokens:
        return
    if tokens[0].endswith(":"):
        raise InputError(where, f"host pattern {tokens[0]!r} ends in ':' (reserved for a port)")
    names, port = expand_hosts(tokens[0], where)
    assignments: dict[str, Any] = {}
    for token in tokens[1:]:
        key, sep, value = token.partition("=")
        if not sep or not key:
            hint = " (quote a value that holds spaces: key='a b')" if len(tokens) > 2 else ""
            raise InputError(where, f"expected key=value after the host name, got {token!r}{hint}")
        assignments[key] = literal(value)
    for name in names:
        host = graph.add_host(name, group, where, source)
        if port is not None:
            host.vars["ansible_port"] = (port, f"{where}: {tokens[0]}")
        for key, value in assignments.items():
            host.vars[key] = (value, f"{where}: {key}")
