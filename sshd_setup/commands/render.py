"""`sshd-setup render`: plan one host's files offline from a local copy of its tree."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from sshd_setup import exitcodes
from sshd_setup.core.plan import plan_host
from sshd_setup.diffing import unified_diff
from sshd_setup.errors import InputError
from sshd_setup.inventory import load_inventory
from sshd_setup.localfs import LocalRoot
from sshd_setup.output import print_findings, print_warnings
from sshd_setup.templating import environment


def run_render(*, inventory: Path, host: str, root: Path, diff: bool, out: Path | None) -> int:
    inv = load_inventory(inventory)
    if host not in inv.hosts:
        raise InputError(f"{inventory}", f"no host {host!r} in the inventory (hosts: {', '.join(inv.hosts)})")
    if not root.is_dir():
        raise InputError("--root", f"{root} is not a directory")
    entry = inv.hosts[host]
    print_warnings(entry.desired.warnings)
    plan = plan_host(entry.desired, LocalRoot(root), environment())
    print_findings(host, plan.findings)
    if plan.errors and not plan.files:
        return exitcodes.HOST_FAILURES
    if out is not None:
        for change in plan.files:
            if not change.remove:  # a removal: simply not among the planned files
                write_under(out, change.path, change.after, change.mode)
        print(f"wrote {len(plan.files)} planned file(s) under {out}", file=sys.stderr)
    elif diff:
        for change in plan.changes:
            sys.stdout.write(unified_diff(change))
        if plan.is_noop:
            print(f"no change: {plan.noop_reason()}", file=sys.stderr)
    else:
        for change in plan.files:
            sys.stdout.write(f"==> {change.path} ({change.reason})\n{'' if change.remove else change.after}")
    return exitcodes.OK


def write_under(out: Path, path: str, text: str, mode: int | None) -> None:
    """Write `path` (absolute on the host) below `out`, never outside it."""
    target = (out / path.lstrip("/")).resolve()
    if not target.is_relative_to(out.resolve()):
        raise InputError("--out", f"{path} would be written outside {out}")
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.sshd-setup-tmp")
    temporary.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    os.chmod(temporary, mode if mode is not None else 0o644)
    os.replace(temporary, target)
