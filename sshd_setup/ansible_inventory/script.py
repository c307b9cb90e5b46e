"""Dynamic inventories: an executable run with `--list` (then `--host NAME` without `_meta`), as Ansible does,
and the same JSON shape in a file (what `ansible-inventory --list` prints)."""

from __future__ import annotations

import errno
import json
import subprocess
from pathlib import Path
from typing import Any

from sshd_setup.ansible_inventory.graph import InventoryGraph
from sshd_setup.ansible_inventory.textfiles import MAX_BYTES, decode
from sshd_setup.errors import InputError

TIMEOUT_SECONDS = 120


class NotAScript(Exception):
    """The file is executable but the system cannot run it (no #! line): read it as a static file."""


def run_script(path: Path, *args: str) -> Any:
    where = f"{path} {' '.join(args)}"
    try:
        proc = subprocess.run(
            [str(path), *args],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except OSError as exc:
        if exc.errno == errno.ENOEXEC:
            raise NotAScript from None
        raise InputError(where, f"cannot run the inventory script: {exc.strerror or exc}") from None
    except subprocess.TimeoutExpired:
        raise InputError(where, f"the inventory script did not finish within {TIMEOUT_SECONDS} s") from None
    if proc.returncode != 0:
        last = proc.stderr.decode("utf-8", errors="replace").strip().splitlines()
        detail = f": {last[-1][:200]}" if last else ""
        raise InputError(where, f"the inventory script exited with status {proc.returncode}{detail}")
    if len(proc.stdout) > MAX_BYTES:
        raise InputError(where, f"the inventory script printed more than {MAX_BYTES // (1024 * 1024)} MiB")
    text = decode(proc.stdout, where)
    if not text.strip() and args[:1] == ("--host",):
        return {}
    return parse_json(text, where)


def parse_json(text: str, where: str) -> Any:
    def refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise InputError(where, f"duplicate key {key!r} in the JSON")
            result[key] = value
        return result

    try:
        return json.loads(text, object_pairs_hook=refuse_duplicates)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}:{exc.lineno}", f"not JSON: {exc.msg}") from None
    except RecursionError:
        raise InputError(where, "not JSON: nested too deeply") from None


def looks_like_listing(data: Any) -> bool:
    """The `--list` shape: `_meta`, or a group whose hosts/children are lists (the YAML format has mappings)."""
    if not isinstance(data, dict):
        return False
    if "_meta" in data:
        return True
    return any(
        isinstance(body, list)
        or (isinstance(body, dict) and any(isinstance(body.get(k), list) for k in ("hosts", "children")))
        for body in data.values()
    )


def parse_listing(data: Any, where: str, source: str, graph: InventoryGraph, host_vars_of: Any = None) -> None:
    """Fill the graph from `--list` JSON; host_vars_of(host) answers `--host NAME` when there is no `_meta`."""
    if not isinstance(data, dict):
        raise InputError(where, f"the inventory JSON must be an object of groups, got {type(data).__name__}")
    hostvars: Any = None
    hosts: list[str] = []
    for group, body in data.items():
        if group == "_meta":
            if not isinstance(body, dict):
                raise InputError(f"{where}: _meta", f"must be an object, got {type(body).__name__}")
            hostvars = body.get("hostvars")
            if not isinstance(hostvars, dict):
                raise InputError(f"{where}: _meta.hostvars", f"must be an object, got {type(hostvars).__name__}")
            continue
        _group(group, body, f"{where}: {group}", source, graph, hosts)
    for host in hosts:
        if hostvars is not None:
            values = hostvars.get(host, {})
            host_where = f"{where}: _meta.hostvars.{host}"
        elif host_vars_of is not None:
            values = host_vars_of(host)
            host_where = f"{source} --host {host}"
        else:
            continue
        if not isinstance(values, dict):
            raise InputError(host_where, f"host variables must be an object, got {type(values).__name__}")
        for key, value in values.items():
            graph.hosts[host].vars[key] = (value, f"{host_where}.{key}")


def _group(name: str, body: Any, where: str, source: str, graph: InventoryGraph, hosts: list[str]) -> None:
    graph.add_group(name, where)
    if isinstance(body, list):
        body = {"hosts": body}
    if not isinstance(body, dict):
        raise InputError(where, f"a group must be an object or a list of hosts, got {type(body).__name__}")
    unknown = sorted(set(body) - {"hosts", "vars", "children"})
    if unknown:
        raise InputError(
            f"{where}.{unknown[0]}", f"unknown group key {unknown[0]!r} (expected hosts, vars or children)"
        )
    members = body.get("hosts", [])
    if not isinstance(members, list) or not all(isinstance(h, str) for h in members):
        raise InputError(f"{where}.hosts", "must be a list of host names")
    for host in members:
        graph.add_host(host, name, f"{where}.hosts", source)
        if host not in hosts:
            hosts.append(host)
    group_vars = body.get("vars", {})
    if not isinstance(group_vars, dict):
        raise InputError(f"{where}.vars", f"must be an object, got {type(group_vars).__name__}")
    for key, value in group_vars.items():
        graph.set_group_var(name, key, value, f"{where}.vars.{key}")
    children = body.get("children", [])
    if not isinstance(children, list) or not all(isinstance(c, str) for c in children):
        raise InputError(f"{where}.children", "must be a list of group names")
    for child in children:
        graph.add_group(child, f"{where}.children")
        graph.add_child(name, child, f"{where}.children")
