"""`sshd-setup render`: plan one host's files offline from a local copy of its tree."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from sshd_setup import exitcodes
from sshd_setup.atomicfile import write_atomic
from sshd_setup.core.desired import Desired
from sshd_setup.core.facts import FileMeta, HostFacts
from sshd_setup.core.finding import Finding
from sshd_setup.core.hostpaths import check_host_paths
from sshd_setup.core.plan import plan_host
from sshd_setup.core.tree import SnapshotEntry, SourceMissing, SourceUnreadable
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
    refused = local_path_findings(entry.desired, LocalRoot(root))
    if refused:  # the host-side path policy, on the tree: nothing of such a file is shown
        print_findings(host, refused)
        return exitcodes.exit_code(all_good=False)
    plan = plan_host(entry.desired, LocalRoot(root), environment())
    print_findings(host, plan.findings)
    if plan.errors and not plan.files:
        return exitcodes.exit_code(all_good=False)
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
    return exitcodes.exit_code()


def local_path_findings(desired: Desired, tree: LocalRoot) -> list[Finding]:
    """check_host_paths() on a local tree: its symlinks resolved inside it (one outside it stays outside)."""
    facts = HostFacts()
    paths = [desired.sshd_config, desired.ca_path, *(m.file for m in desired.mappings if m.file)]
    for path in paths:
        local = tree.local(path)
        real = Path(os.path.realpath(local))
        if real != local:  # the file or a directory on its way is a symlink
            inside = real.is_relative_to(tree.root)
            facts.links[path] = "/" + str(real.relative_to(tree.root)) if inside else str(real)
        if local.is_dir():
            facts.dirs.add(path)
        elif local.exists():
            facts.meta[path] = FileMeta(path, True)
            try:
                facts.files[path] = SnapshotEntry(tree.read(path))
            except (SourceMissing, SourceUnreadable):
                facts.files[path] = SnapshotEntry(None)
    return list(check_host_paths(desired, facts).findings)


def write_under(out: Path, path: str, text: str, mode: int | None) -> None:
    """Write `path` (absolute on the host) below `out`, never outside it."""
    target = (out / path.lstrip("/")).resolve()
    if not target.is_relative_to(out.resolve()):
        raise InputError("--out", f"{path} would be written outside {out}")
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, text, mode if mode is not None else 0o644)
