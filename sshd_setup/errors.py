"""Errors the command line turns into one clear line and an exit code."""

from __future__ import annotations

from sshd_setup import exitcodes


class SshdSetupError(Exception):
    """Base class: a problem the user can act on; the message is one line."""

    exit_code = exitcodes.HOST_FAILURES


class InputError(SshdSetupError):
    """Bad input (inventory, key, name, path, option, API answer): exit 2, nothing contacted or changed."""

    exit_code = exitcodes.BAD_INPUT

    def __init__(self, where: str, problem: str) -> None:
        self.where = where
        self.problem = problem
        super().__init__(f"{where}: {problem}" if where else problem)
