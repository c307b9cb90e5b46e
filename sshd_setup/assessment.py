"""A host's assessment: the pure part of its run — the facts parsed, the plan, the findings — and no I/O.

pipeline.py gathers the facts and acts on the Assessment; verification/target.py reads one too.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from sshd_setup.core.desired import Desired
from sshd_setup.core.facts import HostFacts
from sshd_setup.core.finding import Finding, Severity
from sshd_setup.core.hostpaths import HostPaths, check_host_paths, withhold_refused
from sshd_setup.core.pending import Pending, pending_state
from sshd_setup.core.service import ServicePlan, service_plan
from sshd_setup.core.tree import SnapshotEntry, SnapshotSource, load_tree
from sshd_setup.inventory import HostEntry
from sshd_setup.remote import FileMode
from sshd_setup.remote.protocol import parse_facts_output

if TYPE_CHECKING:
    from sshd_setup.core.plan import Plan
    from sshd_setup.transport import Transport


def warm_up() -> None:
    """Import and compile what assess() needs (~40 ms of CPU). Called by the main thread while the workers
    wait for their first SSH handshakes, so that time overlaps with the hosts' work instead of adding to it."""
    from sshd_setup import diffing  # noqa: F401
    from sshd_setup.core import findings  # noqa: F401
    from sshd_setup.templating import environment

    env = environment()
    for name in env.list_templates(extensions=["j2"]):
        env.get_template(name)


def blocking_findings(findings: list[Finding], allow: frozenset[str]) -> list[Finding]:
    from sshd_setup.core.hostpaths import NEVER_ALLOWED

    allowed = allow - NEVER_ALLOWED
    return [f for f in findings if f.severity is Severity.ERROR and f.code not in allowed]


@dataclass(frozen=True)
class Assessment:
    facts: HostFacts
    plan: Plan
    findings: list[Finding]
    service: ServicePlan
    backups: list[str]
    users_to_create: tuple[str, ...]
    paths: HostPaths = field(default_factory=HostPaths)
    """The managed-path policy on the host: refusals (findings) and symlinks written through."""
    pending: Pending = field(default_factory=lambda: Pending(None))
    """Has the running sshd loaded the files on disk? (a reload is due when not)"""
    main: str = ""
    """The sshd_config this host's sshd reads and sshd-setup manages (the inventory's, or sshd's `-f`)."""

    @property
    def is_noop(self) -> bool:
        return self.plan.is_noop and not self.users_to_create and not self.pending.needs_reload

    def pid_file(self, main: str) -> str:
        """Where sshd writes its pid: the apply script sees the reload's re-exec listening when the new sshd
        writes it again. 'none' for a tree the findings already call broken: the init system's word then."""
        from sshd_setup.core.service import pid_file

        try:
            return pid_file(load_tree(self.facts.source(), main))
        except Exception:
            return "none"

    def helpers(self) -> tuple[str, ...]:
        """SshdSessionPath / SshdAuthPath of the tree as planned: the apply script checks they are executable."""
        from sshd_setup.core.hostchecks import helper_paths

        overlay = dict(self.facts.files)
        overlay.update({c.path: SnapshotEntry(c.after) for c in self.plan.files})
        try:
            tree = load_tree(SnapshotSource(overlay, set(self.facts.dirs)), self.main)
        except Exception:
            return ()
        return tuple(d.line.args[0] for d in helper_paths(tree) if d.line.args[0].startswith("/"))


def script_mode(path: str, assessment: Assessment) -> FileMode | None:
    """(mode, owner, group) the apply script gives `path` (core.filemodes.final_mode); None: copy the existing's."""
    from sshd_setup.core.filemodes import final_mode

    final = final_mode(path, assessment.plan, assessment.facts)
    return final.for_script() if final is not None else None


def login_user(entry: HostEntry, transport: Transport | None = None) -> str:
    """The user sshd-setup logs in as: the inventory's, else what the SSH client resolved ('' when local)."""
    if entry.is_local:
        return ""
    return entry.user or str(getattr(transport, "login_user", "") or "")


def assess(entry: HostEntry, output: str, login: str = "") -> Assessment:
    """Pure part of a host's run: parse facts, plan, find problems. login: the user sshd-setup logs in as."""
    from sshd_setup.core.findings import find_problems
    from sshd_setup.core.plan import Plan, plan_host
    from sshd_setup.templating import environment

    gathered = parse_facts_output(output)
    facts, backups = gathered.facts, gathered.backup_names
    facts.login_user = login
    desired = followed_desired(entry.desired, facts)
    paths = check_host_paths(desired, facts)
    if paths.findings:  # nothing is planned, diffed or written where the policy refuses
        withhold_refused(facts, paths)
        refused = Plan(findings=paths.findings)
        service = service_plan(facts)
        return Assessment(facts, refused, list(paths.findings), service, backups, (), main=desired.sshd_config)
    from sshd_setup.core.filemodes import converge_modes

    plan = converge_modes(plan_host(desired, facts.source(), environment()), facts)
    if any(c.remove and c.path in facts.links for c in plan.files):  # never remove a symlink we did not make
        plan = replace(plan, files=tuple(c for c in plan.files if not (c.remove and c.path in facts.links)))
    findings = list(plan.findings)
    seen = {(f.code, f.path, f.line) for f in findings}
    for finding in find_problems(desired, facts, plan):
        if (finding.code, finding.path, finding.line) not in seen:
            findings.append(finding)
    missing = tuple(m.user for m in desired.mappings if m.user in facts.users and facts.users[m.user] is None)
    create = tuple(dict.fromkeys(missing)) if desired.create_users else ()
    from sshd_setup.core.service import pid_file

    tree = load_tree(facts.source(), desired.sshd_config)
    pending = pending_state(facts, tree, pid_file(tree)) if facts.complete else Pending(None)
    return Assessment(
        facts, plan, findings, service_plan(facts), backups, create, paths, pending=pending, main=desired.sshd_config
    )


def followed_desired(desired: Desired, facts: HostFacts) -> Desired:
    """sshd started with `-f OTHER` reads OTHER: manage that file, unless the inventory names one itself."""
    from sshd_setup.core.desired import DEFAULT_SSHD_CONFIG
    from sshd_setup.core.startopts import running_options

    options = running_options(facts) if facts.complete else None
    if options is None or not options.config or desired.sshd_config != DEFAULT_SSHD_CONFIG:
        return desired
    if options.config != facts.start_main:  # not gathered (the facts script followed another -f)
        return desired
    return dataclasses.replace(desired, sshd_config=options.config)
