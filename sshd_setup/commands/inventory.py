"""`sshd-setup inventory`: the inventory as sshd-setup resolved it, in ansible-inventory's shapes."""

from __future__ import annotations

import difflib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sshd_setup import exitcodes
from sshd_setup.ansible_inventory.listing import graph_lines, list_inventory
from sshd_setup.errors import InputError
from sshd_setup.inventory import SETTINGS_VAR, Inventory, load_inventory
from sshd_setup.output import print_warnings


def host_vars(inv: Inventory, host: str) -> dict[str, Any]:
    """The host's merged variables, with `sshd_setup` as we merge it (per key, most specific wins)."""
    values = dict(inv.vars[host])
    if inv.settings.get(host):
        values[SETTINGS_VAR] = inv.settings[host]
    return values


def _dump(value: Any) -> str:
    return json.dumps(value, indent=4, sort_keys=True, default=str, ensure_ascii=False)


def run_inventory(
    *, inventory: Sequence[Path], limit: str | None, host: str | None, graph: bool, group: str | None
) -> int:
    inv = load_inventory(inventory)
    print_warnings(inv.warnings)
    available = {entry.name for entry in inv.select(limit)}
    if host is not None:
        if host not in inv.hosts:
            close = difflib.get_close_matches(host, list(inv.hosts), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InputError("--host", f"no host {host!r} in the inventory{hint}")
        sys.stdout.write(_dump(host_vars(inv, host)) + "\n")
    elif graph:
        start = group or "all"
        if start not in inv.graph.groups:
            close = difflib.get_close_matches(start, list(inv.graph.groups), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InputError("--graph", f"no group {start!r} in the inventory{hint}")
        sys.stdout.write("\n".join(graph_lines(inv.graph, start, available)) + "\n")
    else:
        hostvars = {name: host_vars(inv, name) for name in inv.hosts}
        sys.stdout.write(_dump(list_inventory(inv.graph, hostvars, available)) + "\n")
    return exitcodes.OK
