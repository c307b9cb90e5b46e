"""The precedence engine (core/precedence.py) against the real sshd of the container hosts.

The shared fleet has OpenSSH 9.2 (deb12, bz3574: the last AuthorizedPrincipalsCommand wins) and 10.0
(deb13, the first wins); this module boots a Debian 11 host with 8.4 (deb11, the first wins: the bug came with
8.7's parser). Trees are written to a scratch directory on the host and judged by
`sshd -T -C user=...` (for whole trees with /etc/ssh bind-mounted from the scratch copy in a private mount
namespace); the host's own configuration and its running sshd are not touched.
"""

from __future__ import annotations

import base64
import io
import shlex
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sshd_setup.core.openssh import apc_last_wins
from sshd_setup.core.tree import load_tree
from sshd_setup.localfs import LocalRoot
from tests.conftest import require_test_hosts
from tests.helpers import apply_plan_to_dir, desired_from, plan_dir
from tests.precedence_cases import CASES, assert_engine_agrees, engine_value, expected, logins, parse_version
from tests.sshd_oracle import SshdResult
from tests.test_oracle import MODES
from tests.testhosts import Fleet, Host, HostSpec

SCRATCH = "/tmp/sshd-setup-precedence"
HOSTS = [("deb11", 8), ("deb12", 9), ("deb13", 10)]
OWN_HOSTS = {"deb11": HostSpec("deb11", suite="bullseye")}
"""Hosts this module boots itself (the shared fleet has the others)."""


@pytest.fixture(scope="module")
def own_fleet() -> Iterator[Fleet]:
    require_test_hosts()
    with Fleet.up(list(OWN_HOSTS.values())) as booted:
        yield booted


def _host(request: pytest.FixtureRequest, fleet: Fleet, name: str) -> Host:
    """The named host: from this module's own fleet (booted on first use) or from the shared one."""
    if name in OWN_HOSTS:
        own: Fleet = request.getfixturevalue("own_fleet")
        return own.host(name)
    return fleet.host(name)


def _version(host: Host, major: int) -> tuple[int, int]:
    version = parse_version(host.run("sshd -V 2>&1 || true").stdout)
    assert version[0] == major, version
    return version


def _sshd_t_as(host: Host, user: str, addr: str) -> SshdResult:
    """sshd -T for a login, reading the scratch copy of /etc/ssh in its place."""
    script = (
        f"mount --make-rprivate / && mount --bind {SCRATCH}/ssh /etc/ssh && "
        f"exec sshd -T -f /etc/ssh/sshd_config -C user={user},host=h,addr={addr}"
    )
    proc = host.run(f"unshare --mount sh -c {shlex.quote(script)}", check=False)
    return SshdResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.mark.parametrize(("name", "major"), HOSTS)
def test_engine_agrees_with_host_sshd_for_every_mapped_user(
    request: pytest.FixtureRequest, fleet: Fleet, name: str, major: int, tmp_path: Path
) -> None:
    """The host's own packaged tree, as it is and planned with every mapping mode, judged by its sshd."""
    host = _host(request, fleet, name)
    legacy = apc_last_wins(_version(host, major))
    desired = desired_from(MODES["everything"])
    archive = host.run("tar -C / -cf - etc/ssh/sshd_config etc/ssh/sshd_config.d | base64 -w0").stdout
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(archive))) as tar:
        tar.extractall(tmp_path, filter="data")
    host.run(f"rm -rf {SCRATCH} && mkdir -p {SCRATCH} && cp -a /etc/ssh {SCRATCH}/ssh")
    compared = 0
    try:
        for stage in ("before", "after"):
            if stage == "after":
                plan = plan_dir(desired, tmp_path)
                assert not plan.errors
                assert all(c.path.startswith("/etc/ssh/") and not c.remove for c in plan.files), plan.files
                apply_plan_to_dir(plan, tmp_path)
                for change in plan.files:
                    target = f"{SCRATCH}/ssh/{change.path.removeprefix('/etc/ssh/')}"
                    host.run(f"mkdir -p {shlex.quote(target.rsplit('/', 1)[0])}")
                    host.write_file(target, change.after.encode(), mode=0o644)
            tree = load_tree(LocalRoot(tmp_path))
            for user, addr in logins(desired):
                sshd = _sshd_t_as(host, user, addr)
                assert sshd.ok, f"{stage} {user}: {sshd.stderr}"
                compared += assert_engine_agrees(tree, user, addr, sshd, legacy=legacy, stage=f"{name} {stage}")
    finally:
        host.run(f"rm -rf {SCRATCH}", check=False)
    assert compared > 0


@pytest.mark.parametrize(("name", "major"), HOSTS)
def test_principals_command_rule_agrees_with_host_sshd(
    request: pytest.FixtureRequest, fleet: Fleet, name: str, major: int
) -> None:
    """bz3574 per version: the cases of tests/precedence_cases.py, judged by the host's sshd."""
    host = _host(request, fleet, name)
    version = _version(host, major)
    try:
        for case in CASES:
            path = f"{SCRATCH}/{case.name}/sshd_config"
            host.run(f"mkdir -p {shlex.quote(SCRATCH)}/{case.name}")
            host.write_file(path, case.config.encode(), mode=0o600)
            query = f"user={case.user},host=h,addr=192.0.2.1"
            proc = host.run(f"sshd -T -f {shlex.quote(path)} -C {shlex.quote(query)}", check=False)
            sshd = SshdResult(proc.returncode, proc.stdout, proc.stderr)
            assert sshd.ok, f"{case.name}: {sshd.stderr}"
            assert sshd.value("authorizedprincipalscommand") == expected(case, version), case.name
            assert engine_value(case, version) == expected(case, version), case.name
    finally:
        host.run(f"rm -rf {SCRATCH}", check=False)
