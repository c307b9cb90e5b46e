"""Pre-flight findings: what in a host's configuration would make the CA setup fail, or break someone else.

find_problems() is pure. It reads the tree as it is (before) and as the plan would leave it (after: the
gathered files overlaid with the planned texts) and reports, with file and line, everything an operator
must see before anything changes: Include order, ports, settings that win or lose under "first value
wins", foreign CAs, foreign Match blocks, missing users, old sshd versions, algorithm lists, modes.

Locations refer to the files as they are now; a location inside our own managed block is the planned line.
Every check runs on its own: a check that fails on odd input becomes an INTERNAL-ERROR finding, the others
still run, and find_problems never raises.
"""

from __future__ import annotations

from collections.abc import Callable

from sshd_setup.core.desired import Desired
from sshd_setup.core.facts import HostFacts
from sshd_setup.core.finding import Finding
from sshd_setup.core.findings.ca_keys import _check_auth_methods, _check_dropped_ca_keys, _check_foreign_ca
from sshd_setup.core.findings.context import ERROR, LEGACY_NOTE, MODERN_NOTE, Context, build_context
from sshd_setup.core.findings.includes_order import (
    _check_block_position,
    _check_global_only_in_match,
    _check_includes,
    _check_tree_errors,
    _check_vendor,
)
from sshd_setup.core.findings.permissions import _check_permissions
from sshd_setup.core.findings.ports_sockets import (
    _check_helpers,
    _check_listen_addresses,
    _check_pending,
    _check_ports,
    _check_socket_daemon_reload,
    _check_start_options,
    listen_ports,
    required_port,
)
from sshd_setup.core.findings.principals_match import _check_changed_values, _check_foreign_match, _check_match_swallows
from sshd_setup.core.findings.users_access import _check_access, _check_allow_all, _check_flow, _check_users
from sshd_setup.core.findings.versions_algorithms import _check_algorithms, _check_version
from sshd_setup.core.openssh import CRYPTO_POLICY_FILE
from sshd_setup.core.plan import Plan

__all__ = [
    "CHECKS",
    "CRYPTO_POLICY_FILE",
    "LEGACY_NOTE",
    "MODERN_NOTE",
    "find_problems",
    "listen_ports",
    "required_port",
]


CHECKS: tuple[Callable[[Context], list[Finding]], ...] = (
    _check_tree_errors,
    _check_global_only_in_match,
    _check_includes,
    _check_block_position,
    _check_changed_values,
    _check_foreign_match,
    _check_match_swallows,
    _check_ports,
    _check_flow,
    _check_foreign_ca,
    _check_dropped_ca_keys,
    _check_users,
    _check_allow_all,
    _check_version,
    _check_algorithms,
    _check_auth_methods,
    _check_permissions,
    _check_vendor,
    _check_pending,
    _check_access,
    _check_start_options,
    _check_listen_addresses,
    _check_helpers,
    _check_socket_daemon_reload,
)


def _internal(what: str, exc: BaseException) -> Finding:
    return Finding(
        "INTERNAL-ERROR",
        ERROR,
        f"{what} failed: {type(exc).__name__}: {str(exc)[:200]}",
        "this host's configuration could not be fully checked; please report this output",
    )


def find_problems(
    desired: Desired | None, facts: HostFacts, plan: Plan | None, *, main_path: str | None = None
) -> list[Finding]:
    """Everything an operator must know before this host changes. Never raises.

    desired None: lint without an inventory (checks that need the desired state are skipped). plan None:
    only the current tree is judged. main_path overrides the main sshd_config file (default: desired's).
    Findings the plan itself reported (plan.findings) are not repeated.
    """
    try:
        ctx = build_context(desired, facts, plan, main_path)
    except Exception as exc:  # reported as a finding, never raised
        return [_internal("reading the configuration tree", exc)]
    findings: list[Finding] = []
    for check in CHECKS:
        try:
            findings.extend(check(ctx))
        except Exception as exc:  # one failing check must not hide the others
            findings.append(_internal(f"check {check.__name__.removeprefix('_check_')}", exc))
    unique: dict[tuple[str, str, int, str], Finding] = {}
    for finding in findings:
        unique.setdefault((finding.code, finding.path, finding.line, finding.message), finding)
    return list(unique.values())
