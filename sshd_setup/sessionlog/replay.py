"""Play a PTY session in the terminal at its recorded pace (what scriptreplay does with the vendor's
term_data/term_times pair), straight from the capture: server output only, as it was shown."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO

from sshd_setup.sessionlog.packets import CLIENT, Fragment


def replay_steps(fragments: Iterable[Fragment]) -> Iterator[tuple[float, bytes]]:
    """(seconds to wait first, bytes to show) for each piece of server output."""
    last_us = 0
    for frag in fragments:
        if frag.packet.source == CLIENT:
            continue  # the server echoes what the user typed
        delay = 0.0
        if frag.first:
            delay = max(0, frag.packet.elapsed_us - last_us) / 1_000_000
            last_us = frag.packet.elapsed_us
        yield delay, frag.data


def play(
    steps: Iterable[tuple[float, bytes]],
    out: IO[bytes],
    *,
    speed: float = 1.0,
    max_delay: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Write each step after its delay / speed (capped at max_delay seconds when given)."""
    for delay, data in steps:
        wait = delay / speed
        if max_delay is not None:
            wait = min(wait, max_delay)
        if wait > 0:
            out.flush()
            sleep(wait)
        out.write(data)
    out.flush()
