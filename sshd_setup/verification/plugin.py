"""pytest plugin of the verification suite: hosts from an sshd-setup inventory, one testinfra host each.

Options (each also read from an environment variable, for runs where this plugin is loaded late):

    --sshd-setup-inventory INV      SSHD_SETUP_INVENTORY   the Ansible-style inventory (required)
    --sshd-setup-limit PATTERN      SSHD_SETUP_LIMIT       Ansible host pattern, as `--limit`
    --sshd-setup-allow CODE         SSHD_SETUP_ALLOW       error finding codes not to count (comma list)
    --sshd-setup-host-key-checking yes|no                 default: ANSIBLE_HOST_KEY_CHECKING (else yes)
                                    SSHD_SETUP_BECOME_PASSWORD   sudo password (`verify -K` sets it for its
                                                           run only: never an option, so never in argv)

Fixtures: ``target`` (a VerifyHost: inventory entry + testinfra connection + cached reads; ``target.host``
is its testinfra Host), ``desired`` and, for per-mapping checks, ``mapping``. The suite's conftest.py also
overrides testinfra's ``host`` fixture with ``target.host``, so ordinary testinfra tests placed beside the
suite's run against the inventory's hosts. Every check's report carries the user properties
sshd_setup_host, sshd_setup_check, sshd_setup_description and (when it did not pass) sshd_setup_reason.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from sshd_setup.core.desired import Desired, Mapping
from sshd_setup.core.finding import parse_allow
from sshd_setup.errors import InputError, SshdSetupError
from sshd_setup.inventory import HostEntry, load_inventory

_HOSTS = pytest.StashKey[list[HostEntry]]()
_TARGETS = pytest.StashKey[dict[str, Any]]()
_STARTED = pytest.StashKey[set[str]]()
STOP_FILE_ENV = "SSHD_SETUP_STOP_FILE"
"""`verify` creates this file on Ctrl-C: hosts not yet started are skipped, those started finish."""


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput") and os.environ.get(STOP_FILE_ENV):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # an xdist worker: `verify` decides, via the stop file


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    """After Ctrl-C (the stop file exists) start no new host; a host already started runs all its checks."""
    host = host_name(item)
    started = item.config.stash.setdefault(_STARTED, set())
    if host is None or host in started:
        return None
    stop = os.environ.get(STOP_FILE_ENV)
    if stop and os.path.exists(stop):
        return True  # handled: not run, no report (the host is reported not started)
    started.add(host)
    return None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sshd-setup", "sshd-setup verification")
    group.addoption(
        "--sshd-setup-inventory",
        dest="sshd_setup_inventory",
        action="append",
        default=[],
        help="sshd-setup inventory to verify (repeat to merge, as -i)",
    )
    group.addoption("--sshd-setup-limit", dest="sshd_setup_limit", help="Ansible host pattern (as --limit)")
    group.addoption(
        "--sshd-setup-allow", dest="sshd_setup_allow", action="append", default=[], help="finding code not to count"
    )
    group.addoption(
        "--sshd-setup-host-key-checking",
        dest="sshd_setup_host_key_checking",
        choices=["yes", "no"],
        help="check host keys against known_hosts (default: ANSIBLE_HOST_KEY_CHECKING, else yes)",
    )
    group.addoption(
        "--sshd-setup-timeout", dest="sshd_setup_timeout", type=float, default=10.0, help="connect timeout (s)"
    )


def _option(config: pytest.Config, name: str, env: str) -> Any:
    value = config.getoption(name, default=None)
    return value if value not in (None, []) else os.environ.get(env) or None


def selected_hosts(config: pytest.Config) -> list[HostEntry]:
    """The inventory's hosts that --sshd-setup-limit selects (loaded once per run)."""
    if _HOSTS not in config.stash:
        path = _option(config, "sshd_setup_inventory", "SSHD_SETUP_INVENTORY")
        if not path:
            raise pytest.UsageError(
                "the sshd-setup verification suite needs --sshd-setup-inventory INV (or SSHD_SETUP_INVENTORY)"
            )
        try:
            inventory = load_inventory([Path(p) for p in ([path] if isinstance(path, str) else path)])
            config.stash[_HOSTS] = inventory.select(_option(config, "sshd_setup_limit", "SSHD_SETUP_LIMIT"))
        except SshdSetupError as exc:
            raise pytest.UsageError(f"sshd-setup inventory: {exc}") from None
    return config.stash[_HOSTS]


def allowed_codes(config: pytest.Config) -> frozenset[str]:
    values = _option(config, "sshd_setup_allow", "SSHD_SETUP_ALLOW") or []
    if isinstance(values, str):
        values = [values]
    try:
        return parse_allow(values)
    except InputError as exc:
        raise pytest.UsageError(f"sshd-setup {exc}") from None


def host_key_checking(config: pytest.Config) -> bool | None:
    value = config.getoption("sshd_setup_host_key_checking", default=None)
    return None if value is None else value == "yes"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "target" not in metafunc.fixturenames:
        return
    hosts = selected_hosts(metafunc.config)
    if "mapping" in metafunc.fixturenames:
        modes = getattr(metafunc.function, "mapping_modes", ("single", "list", "any"))
        pairs = [(entry, m) for entry in hosts for m in entry.desired.mappings if m.mode in modes]
        metafunc.parametrize(
            ["target", "mapping"],
            pairs,
            indirect=["target"],
            ids=[f"{entry.name}-{m.user}" for entry, m in pairs],
            scope="session",
        )
    else:
        metafunc.parametrize("target", hosts, indirect=True, ids=[entry.name for entry in hosts], scope="session")


MODULE_ORDER = (
    "test_ca_file",
    "test_sshd_config",
    "test_principals",
    "test_effective_config",
    "test_service",
    "test_state",
)


@pytest.hookimpl(trylast=True)  # after pytest's own reordering by fixture parameters
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every check of one host together, in the suite's order (pytest's default groups by fixture param)."""
    if _HOSTS not in config.stash:
        return  # no verification check was collected: leave any other session's order alone
    hosts = config.stash[_HOSTS]
    order = {entry.name: index for index, entry in enumerate(hosts)}

    def key(item: pytest.Item) -> tuple[int, int, str, int, int]:
        host = host_name(item)
        module = getattr(getattr(item, "module", None), "__name__", "").rsplit(".", 1)[-1]
        rank = MODULE_ORDER.index(module) if module in MODULE_ORDER else len(MODULE_ORDER)
        line = item.reportinfo()[1] or 0
        callspec = getattr(item, "callspec", None)
        mapping = callspec.params.get("mapping") if callspec is not None else None
        entry = callspec.params.get("target") if callspec is not None else None
        position = entry.desired.mappings.index(mapping) if isinstance(mapping, Mapping) and entry else -1
        return (order.get(host, len(order)) if host else -1, rank, module, line, position)

    items.sort(key=key)
    for item in items:  # `verify --forks`: pytest-xdist --dist loadgroup keeps each host on one worker
        host = host_name(item)
        if host:
            item.add_marker(pytest.mark.xdist_group(host))


F = TypeVar("F", bound=Callable[..., None])


def only_modes(*modes: str) -> Callable[[F], F]:
    """Decorator: a per-mapping check that applies only to mappings of these modes (e.g. "list")."""

    def mark(function: F) -> F:
        function.mapping_modes = modes  # type: ignore[attr-defined]
        return function

    return mark


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The host under verification, connected once per session; unreachable → every check fails with why."""
    from sshd_setup.verification.target import HostUnreachable, VerifyHost

    entry: HostEntry = request.param
    targets = request.config.stash.setdefault(_TARGETS, {})
    if entry.name not in targets:
        verify_host = VerifyHost(
            entry,
            host_key_checking(request.config),
            allowed_codes(request.config),
            timeout=float(request.config.getoption("sshd_setup_timeout", default=10.0)),
        )
        targets[entry.name] = verify_host
        with contextlib.suppress(HostUnreachable):  # remembered in verify_host.unreachable
            verify_host.connect()
    found = targets[entry.name]
    if found.unreachable is not None:
        pytest.fail(f"unreachable: {found.unreachable}", pytrace=False)
    yield found


@pytest.fixture
def desired(target: Any) -> Desired:
    return target.desired  # type: ignore[no-any-return]


@pytest.fixture
def mapping(request: pytest.FixtureRequest) -> Mapping:
    return request.param  # type: ignore[no-any-return]


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Close a host's connection as soon as its last check ran (items are grouped per host)."""
    host = host_name(item)
    if host is not None and (nextitem is None or host_name(nextitem) != host):
        verify_host = item.config.stash.get(_TARGETS, {}).get(host)
        if verify_host is not None:
            verify_host.close()


def pytest_sessionfinish(session: pytest.Session) -> None:
    for verify_host in session.config.stash.get(_TARGETS, {}).values():
        verify_host.close()


def check_name(item: pytest.Item) -> str:
    name = getattr(item, "originalname", item.name).removeprefix("test_")
    callspec = getattr(item, "callspec", None)
    mapping_param = callspec.params.get("mapping") if callspec is not None else None
    return f"{name}[{mapping_param.user}]" if isinstance(mapping_param, Mapping) else name


def host_name(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    entry = callspec.params.get("target") if callspec is not None else None
    return entry.name if isinstance(entry, HostEntry) else None


def one_line_reason(report: pytest.TestReport, excinfo: pytest.ExceptionInfo[BaseException] | None) -> str:
    """The reason a check did not pass: our own fail() message, else the exception's one line."""
    if excinfo is not None and isinstance(excinfo.value, pytest.fail.Exception | pytest.skip.Exception):
        return str(excinfo.value.msg)
    if excinfo is not None:
        text = str(excinfo.value).strip().splitlines()
        prefix = "" if isinstance(excinfo.value, AssertionError) else f"{excinfo.typename}: "
        return prefix + (text[0] if text else "")
    return report.longreprtext.strip().splitlines()[0] if report.longreprtext.strip() else ""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report: pytest.TestReport = yield
    host = host_name(item)
    if host is not None:
        report.user_properties.append(("sshd_setup_host", host))
        report.user_properties.append(("sshd_setup_check", check_name(item)))
        doc = (getattr(getattr(item, "obj", None), "__doc__", None) or "").strip().splitlines()
        report.user_properties.append(("sshd_setup_description", doc[0] if doc else ""))
        if not report.passed:
            report.user_properties.append(("sshd_setup_reason", one_line_reason(report, call.excinfo)))
    return report
