"""Shared pytest fixtures.

Integration tests (marker ``integration``) run against real test hosts from tests/testhosts:
systemd-nspawn containers with real systemd and sshd. Without the prerequisites (root,
systemd-nspawn, debootstrap, network namespaces) they are skipped locally and FAIL when CI=true.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence

import pytest

from tests.testhosts import Fleet, HostSpec, missing_prerequisites

#: The shared read-only fleet: Debian 12 (OpenSSH 9.2), RHEL-flavoured Debian 12, Debian 13 (10.0).
SESSION_SPECS = [HostSpec("deb12"), HostSpec("rhel9", flavour="rhel"), HostSpec("deb13", suite="trixie")]

_missing: list[str] | None = None


def require_test_hosts() -> None:
    """Skip (locally) or fail (CI=true) the current test when test hosts cannot be booted here."""
    global _missing
    if _missing is None:
        _missing = missing_prerequisites()
    if _missing:
        reason = "test hosts unavailable: " + "; ".join(_missing)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (CI=true: a missing prerequisite is a failure)", pytrace=False)
        pytest.skip(reason)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Tests that use host fixtures are integration tests (and fresh_hosts ones destructive) even if
    # their author forgot the marker, so `-m "not integration"` always leaves them out.
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "fresh_hosts" in names:
            item.add_marker(pytest.mark.destructive)
        if "fresh_hosts" in names or "fleet" in names:
            item.add_marker(pytest.mark.integration)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("integration") is not None:
        require_test_hosts()


@pytest.fixture(scope="session")
def fleet() -> Iterator[Fleet]:
    """Hosts deb12, rhel9, deb13 shared by the whole session: do not change their state."""
    require_test_hosts()
    with Fleet.up(SESSION_SPECS) as booted:
        yield booted


FreshHosts = Callable[[Sequence[HostSpec | str]], Fleet]


@pytest.fixture
def fresh_hosts() -> Iterator[FreshHosts]:
    """Factory: ``fleet = fresh_hosts([HostSpec("h1"), "h2"])`` boots hosts this test alone may change."""
    require_test_hosts()
    fleets: list[Fleet] = []

    def boot(specs: Sequence[HostSpec | str]) -> Fleet:
        booted = Fleet.up([HostSpec(s) if isinstance(s, str) else s for s in specs])
        fleets.append(booted)
        return booted

    yield boot
    errors = []
    for booted in fleets:
        try:
            booted.down()
        except Exception as exc:  # stop the others anyway, then report the first failure
            errors.append(exc)
    if errors:
        raise errors[0]
