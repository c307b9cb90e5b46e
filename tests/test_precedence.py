"""The bz3574 window of the precedence engine, per OpenSSH version, in milliseconds.

What real sshd prints for these cases is checked by tests/test_oracle.py (this machine's 9.2) and
tests/test_precedence_hosts.py (8.4, 9.2 and 10.0 on container hosts).
"""

from __future__ import annotations

import pytest

from sshd_setup.core.openssh import apc_last_wins
from tests.precedence_cases import CASES, Case, engine_value

#: OpenSSH 8.4 (Debian 11) keeps the first AuthorizedPrincipalsCommand like 9.4+: servconf.c only started to
#: test the wrong variable with 8.7's argv_split() parser.
VERSIONS = [((8, 4), False), ((8, 6), False), ((8, 7), True), ((9, 2), True), ((9, 3), True), ((9, 4), False)]


@pytest.mark.parametrize(("version", "last_wins"), [*VERSIONS, ((10, 0), False)])
def test_the_last_principals_command_wins_only_from_8_7_to_9_3(version: tuple[int, int], last_wins: bool) -> None:
    assert apc_last_wins(version) is last_wins


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.parametrize(("version", "last_wins"), VERSIONS)
def test_engine_picks_the_line_sshd_of_that_version_prints(
    case: Case, version: tuple[int, int], last_wins: bool
) -> None:
    assert engine_value(case, version) == (case.legacy if last_wins else case.modern)
