"""Load the suite's plugin when pytest was not told to (`pytest --pyargs sshd_setup.verification`).

Options of a plugin loaded this late are not on pytest's command line; it then reads them from the
environment (SSHD_SETUP_INVENTORY, SSHD_SETUP_LIMIT, SSHD_SETUP_ALLOW). With
`-p sshd_setup.verification.plugin` the command-line options work and only the `host` override below
matters.
"""

from __future__ import annotations

from typing import Any

import pytest

PLUGIN = "sshd_setup.verification.plugin"


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin(PLUGIN):
        config.pluginmanager.import_plugin(PLUGIN)


@pytest.fixture
def host(target: Any) -> Any:
    """The testinfra Host of the inventory host under verification.

    Overrides pytest-testinfra's own ``host`` fixture (a conftest fixture wins over a plugin's), which
    would otherwise run ordinary testinfra tests placed here on THIS machine (its default is local).
    """
    return target.host
