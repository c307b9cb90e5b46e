"""Exit codes, in ONE place.

0  every host converged (or would, in dry-run) / every check passed
1  at least one host blocked, failed, unreachable, or a check failed
2  bad usage or bad input; nothing was contacted and nothing changed
   (also: apply without a terminal to confirm on and without --yes)
130 interrupted (Ctrl-C): hosts in flight were finished, the rest not started
"""

from __future__ import annotations

OK = 0
HOST_FAILURES = 1
BAD_INPUT = 2
INTERRUPTED = 130


def exit_code(*, all_good: bool = True, interrupted: bool = False, bad_input: bool = False) -> int:
    """THE policy every command's outcome goes through: bad input 2, else Ctrl-C 130, else 1 unless all went well.

    all_good: every host converged / every check passed / no error finding (a refusal or "not confirmed": False).
    """
    if bad_input:
        return BAD_INPUT
    if interrupted:
        return INTERRUPTED
    return OK if all_good else HOST_FAILURES
