"""`sshd-setup lint`: pre-flight findings for a local configuration tree, offline.

The facts come from the offline gatherer (sshd_setup/offline.py), the same model the facts script fills.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from sshd_setup import exitcodes
from sshd_setup.core.desired import DEFAULT_SSHD_CONFIG, Desired
from sshd_setup.core.finding import Finding, Severity
from sshd_setup.core.findings import find_problems
from sshd_setup.errors import InputError
from sshd_setup.offline import offline_facts

JSON_SCHEMA = 1


def _main_path(path: str | None, root: Path, default: str) -> str:
    """The main file as a path on the host: PATH names it locally (without --root) or inside ROOT."""
    if path is None:
        return default
    if root == Path("/"):
        return str(Path(path).resolve())
    candidate = Path(path)
    if candidate.is_absolute():
        try:
            return "/" + str(candidate.resolve().relative_to(root.resolve()))
        except ValueError:
            return path  # an absolute path on the host, looked up under ROOT
    return "/" + path.removeprefix("./").lstrip("/")


def _desired_for(inventory: Path | None, host: str | None) -> tuple[Desired | None, list[str]]:
    if inventory is None and host is None:
        return None, []
    if inventory is None or host is None:
        raise InputError("--inventory/--host", "give both -i INVENTORY and --host NAME, or neither")
    from sshd_setup.inventory import load_inventory

    inv = load_inventory(inventory)
    if host not in inv.hosts:
        raise InputError(str(inventory), f"no host {host!r} in the inventory (hosts: {', '.join(inv.hosts)})")
    entry = inv.hosts[host]
    return entry.desired, list(entry.desired.warnings)


def local_sshd_version() -> str:
    """`sshd -V` of this machine (for linting '/'), or '' when there is none."""
    import shutil
    import subprocess

    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    try:
        proc = subprocess.run([sshd, "-V"], capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return ""
    first = (proc.stderr or proc.stdout).strip().splitlines()
    return first[0] if first and first[0].startswith("OpenSSH_") else ""


def lint_findings(
    *, root: Path, main: str | None = None, desired: Desired | None = None, sshd_version: str = ""
) -> tuple[str, list[Finding]]:
    """(main path, findings) for a local tree: the plan's own findings, then the pre-flight ones.

    sshd_version ('OpenSSH_9.2p1 ...') makes version-dependent checks exact; '' checks for every version.
    """
    main_path = main or (desired.sshd_config if desired is not None else DEFAULT_SSHD_CONFIG)
    if desired is not None and desired.sshd_config != main_path:
        desired = dataclasses.replace(desired, sshd_config=main_path)
    facts, plan = offline_facts(root, main_path, desired)
    facts.sshd_version_text = sshd_version
    findings = list(plan.findings) if plan is not None else []
    seen = {(f.code, f.path, f.line) for f in findings}
    for finding in find_problems(desired, facts, plan, main_path=main_path):
        if (finding.code, finding.path, finding.line) not in seen:
            findings.append(finding)
    return main_path, findings


def run_lint(
    *,
    path: str | None = None,
    root: Path | None = None,
    json_output: bool = False,
    inventory: Path | None = None,
    host: str | None = None,
) -> int:
    """Exit code: 0 without error findings, 1 with errors, 2 on bad usage."""
    try:
        desired, warnings = _desired_for(inventory, host)
        local_root = root if root is not None else Path("/")
        if not local_root.is_dir():
            raise InputError("--root", f"{local_root} is not a directory")
        default = desired.sshd_config if desired is not None else DEFAULT_SSHD_CONFIG
        main = _main_path(path, local_root, default)
        if path is not None and not (local_root / main.lstrip("/")).is_file():
            raise InputError(path, f"no such file{f' under {local_root}' if root is not None else ''}")
    except InputError as exc:
        print(f"sshd-setup: error: {exc}", file=sys.stderr)
        return exitcodes.exit_code(bad_input=True)
    label = host or (str(root) if root is not None else "localhost")
    version = local_sshd_version() if root is None else ""  # a tree under --root may come from any host
    main, findings = lint_findings(root=local_root, main=main, desired=desired, sshd_version=version)
    if json_output:
        document = {
            "schema": JSON_SCHEMA,
            "hosts": [{"host": label, "main": main, "findings": [f.to_json() for f in findings]}],
        }
        sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    else:
        from sshd_setup.output import finding_counts, print_findings, print_warnings

        print_warnings(warnings)
        print_findings(f"{label} ({main})", findings, stderr=False, wrap=False)
        if not findings:
            print(f"{label} ({main}): no findings")
        else:
            print(f"{label}: {finding_counts(findings)}")
    has_errors = any(f.severity is Severity.ERROR for f in findings)
    return exitcodes.exit_code(all_good=not has_errors)
