"""The managed-path policy again, on the host, against what is really at each path sshd-setup would write.

The inventory's paths passed the policy before any host was contacted; here the facts say what they are:
- a symlinked sshd_config is written THROUGH to its target, which must itself be an sshd config path;
- a symlinked CA or principals file is written through only when its target passes the same policy;
- an existing CA / principals file is overwritten only when it is ours (our header) or a plain list of
  keys / principals; a directory or another kind of file is never touched.
Every refusal is an error finding that `--allow` cannot lift; its message names paths, never content.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sshd_setup.core.desired import Desired
from sshd_setup.core.facts import HostFacts
from sshd_setup.core.finding import Finding, Severity
from sshd_setup.core.pathpolicy import (
    existing_ca_file_problem,
    existing_principals_file_problem,
    managed_file_problem,
    sshd_config_problem,
)
from sshd_setup.core.tree import SnapshotEntry

PATH_REFUSED = "MANAGED-PATH-REFUSED"
FILE_FOREIGN = "MANAGED-FILE-FOREIGN"
NEVER_ALLOWED = frozenset({PATH_REFUSED, FILE_FOREIGN})
"""Error codes `--allow` does not lift: sshd-setup never writes there."""
WITHHELD = "withheld: outside sshd-setup's managed-path policy"


@dataclass(frozen=True)
class HostPaths:
    findings: tuple[Finding, ...] = ()
    write_through: dict[str, str] = field(default_factory=dict)
    """Managed path that is a symlink → the real file to write (the link itself stays)."""

    def real(self, path: str) -> str:
        return self.write_through.get(path, path)


def check_host_paths(desired: Desired, facts: HostFacts) -> HostPaths:
    findings: list[Finding] = []
    through: dict[str, str] = {}
    dirs = desired.managed_dirs
    main = desired.sshd_config
    if main in facts.links:
        main_target = facts.links[main]
        problem = sshd_config_problem(main_target, dirs) if main_target else "cannot be resolved"
        if problem:
            findings.append(_link_refused("sshd_config", main, main_target, problem))
        else:
            through[main] = main_target
    managed: list[tuple[str, str]] = [(desired.ca_path, "ca_path")]
    managed += [(m.file, "principals file") for m in desired.mappings if m.file is not None]
    for path, what in managed:
        target = facts.links.get(path)
        if target is not None:
            problem = managed_file_problem(target, what, dirs) if target else "cannot be resolved"
            taken = {through.get(main, main), *(facts.links.get(p, p) for p, _ in managed if p != path)}
            if not problem and target in taken:
                problem = "is another file sshd-setup manages"
            if problem:
                findings.append(_link_refused(what, path, target, problem))
                continue
            through[path] = target
        if path in facts.dirs:
            findings.append(_refused(path, f"{what} {path} is a directory"))
            continue
        entry = facts.files.get(path)
        if entry is None:
            continue  # does not exist yet: ours to create
        if entry.text is None:
            findings.append(_refused(path, f"{what} {path} is not a regular file"))
            continue
        check = existing_ca_file_problem if what == "ca_path" else existing_principals_file_problem
        problem = check(entry.text)
        if problem:
            kind = "SSH public keys" if what == "ca_path" else "principal names"
            findings.append(
                Finding(
                    FILE_FOREIGN,
                    Severity.ERROR,
                    f"{path} exists and is neither sshd-setup's file nor a plain list of {kind} ({problem}); "
                    "it is never overwritten",
                    f"move that file away or choose another {what} in the inventory",
                    path,
                )
            )
    return HostPaths(tuple(findings), through)


def withhold_refused(facts: HostFacts, paths: HostPaths) -> None:
    """Drop the contents of refused files from the facts, so that nothing can ever print them."""
    for finding in paths.findings:
        if finding.path in facts.files:
            facts.files[finding.path] = SnapshotEntry(None, WITHHELD)


def _link_refused(what: str, path: str, target: str, problem: str) -> Finding:
    """'<what> <path> is a symlink to <target>, which <problem without its own subject>'."""
    reason = problem.removeprefix(f"{what} {target} ")
    return _refused(path, f"{what} {path} is a symlink to {target or '?'}, which {reason}")


def _refused(path: str, message: str) -> Finding:
    return Finding(
        PATH_REFUSED,
        Severity.ERROR,
        message,
        "sshd-setup never writes there (--allow cannot change that): point the inventory at a file within the "
        "managed-path policy, or replace the symlink by the file",
        path,
    )
