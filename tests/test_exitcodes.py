"""The exit-code policy (sshd_setup/exitcodes.exit_code) every command goes through, and README's table of it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sshd_setup import exitcodes
from sshd_setup.report import HostResult, Status
from sshd_setup.report import exit_code as fleet_exit_code

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize(
    ("outcome", "code"),
    [
        ({}, 0),
        ({"all_good": True}, 0),
        ({"all_good": False}, 1),
        ({"all_good": False, "interrupted": True}, 130),
        ({"all_good": True, "interrupted": True}, 130),
        ({"all_good": False, "interrupted": True, "bad_input": True}, 2),
        ({"bad_input": True}, 2),
    ],
)
def test_bad_input_wins_then_ctrl_c_then_any_failure(outcome: dict[str, bool], code: int) -> None:
    assert exitcodes.exit_code(**outcome) == code


def test_a_fleet_run_is_good_only_when_every_host_is() -> None:
    def results(*statuses: Status) -> list[HostResult]:
        return [HostResult(host=f"h{i}", status=status, reason="") for i, status in enumerate(statuses)]

    assert fleet_exit_code(results(Status.UNCHANGED, Status.CHANGED, Status.CHECKED)) == 0
    assert fleet_exit_code(results(Status.UNCHANGED, Status.UNREACHABLE)) == 1
    assert fleet_exit_code(results(Status.UNCHANGED, Status.NOT_STARTED), interrupted=True) == 130
    assert fleet_exit_code(results(Status.BLOCKED)) == 1


def test_readme_table_lists_exactly_the_codes_defined() -> None:
    section = README.read_text().split("### Exit codes", 1)[1].split("\n## ", 1)[0]
    documented = {int(code) for code in re.findall(r"^\| (\d+) \|", section, re.MULTILINE)}
    defined = {exitcodes.OK, exitcodes.HOST_FAILURES, exitcodes.BAD_INPUT, exitcodes.INTERRUPTED}
    assert documented == defined
