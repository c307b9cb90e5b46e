"""Run control for every fleet command: batches (--serial, the first is the canary), a failure budget
(--max-fail), Ctrl-C that lets hosts in flight finish, and a live display of them on a terminal.

The work given to run_hosts() must reach a safe end by itself (a host between its write and its verified
reload finishes its guard or its rollback): Ctrl-C here only stops STARTING hosts, never interrupts one.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any, Generic, TypeVar

from sshd_setup.errors import InputError

T = TypeVar("T")
R = TypeVar("R")

POLL_SECONDS = 0.2
"""How often the main thread looks at Ctrl-C presses while hosts are in flight."""


@dataclass(frozen=True)
class Amount:
    """N hosts or N% of them (--serial, --max-fail)."""

    value: int
    percent: bool = False

    def of(self, total: int) -> int:
        return math.floor(total * self.value / 100) if self.percent else self.value


def parse_amount(option: str, text: str | None, minimum: int) -> Amount | None:
    if text is None:
        return None
    raw = text.strip()
    percent = raw.endswith("%")
    digits = raw.removesuffix("%")
    if not digits.isdigit() or int(digits) < minimum or (percent and int(digits) > 100):
        raise InputError(
            option, f"{text!r} is not a number of hosts (at least {minimum}) or a percentage ({minimum}..100%)"
        )
    return Amount(int(digits), percent)


def batches(items: Sequence[T], serial: Amount | None) -> list[list[T]]:
    """Consecutive batches of --serial hosts (N% of all: at least 1); no --serial: one batch."""
    if serial is None or not items:
        return [list(items)]
    size = max(1, serial.of(len(items)))
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def over_budget(failed: int, done: int, max_fail: Amount | None) -> bool:
    """More failures so far than --max-fail allows (N% of the hosts done so far)."""
    return max_fail is not None and failed > max_fail.of(done)


class Interrupt:
    """SIGINT while hosts are in flight: the first press stops starting hosts, later ones say why we wait."""

    def __init__(self, why: str = "") -> None:
        self.why = why or (
            "a host stopped between its write and its verified reload could be left changed but unverified "
            "(or locked out), so each one runs its lockout guard or its rollback to the end"
        )
        self.presses = 0
        self.on_press: Callable[[], None] | None = None
        """Called by the signal handler, for a main thread that cannot poll (e.g. busy in pytest.main)."""
        self._told = 0
        self._previous: Any = None

    @property
    def stopped(self) -> bool:
        return self.presses > 0

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.presses += 1
        if self.on_press is not None:
            self.on_press()

    @contextmanager
    def installed(self) -> Iterator[Interrupt]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        self._previous = signal.signal(signal.SIGINT, self._handle)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, self._previous)

    @contextmanager
    def suspended(self) -> Iterator[None]:
        """Ctrl-C raises KeyboardInterrupt again meanwhile (e.g. at a question: nothing is in flight)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        ours = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, ours)

    def notice(self, in_flight: int | None) -> str | None:
        """What to say about presses not yet answered (None: nothing new); in_flight None: not known."""
        if self.presses == self._told:
            return None
        first = self._told == 0
        self._told = self.presses
        hosts = "hosts" if in_flight is None else f"{in_flight} host{'s' if in_flight != 1 else ''}"
        if in_flight == 0:
            return "interrupted: starting no more hosts" if first else None
        if first:
            return f"interrupted: starting no more hosts; finishing the {hosts} in flight, then the summary"
        return f"still finishing {hosts}: {self.why}"


class Live(Generic[T]):
    """Hosts in flight and failures as they happen, on stderr, only when it is a terminal."""

    def __init__(self, label: str, total: int, name: Callable[[T], str], enabled: bool) -> None:
        self.name = name
        self.total = total
        self.label = label
        self.done = 0
        self.in_flight: list[str] = []
        self._live: Any = None
        self.enabled = enabled

    def __enter__(self) -> Live[T]:
        if self.enabled:
            from rich.console import Console
            from rich.live import Live as RichLive

            self._live = RichLive(self._render(), console=Console(stderr=True), transient=True, refresh_per_second=8)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None

    def _render(self) -> Any:
        from rich.text import Text

        from sshd_setup.grouping import compress_hosts

        flying = compress_hosts(self.in_flight) if self.in_flight else "-"
        return Text(f"{self.label}: {self.done}/{self.total} done · in flight: {flying}", no_wrap=True)

    def started(self, item: T) -> None:
        self.in_flight.append(self.name(item))
        self._refresh()

    def finished(self, item: T, failure: str | None) -> None:
        self.done += 1
        if self.name(item) in self.in_flight:
            self.in_flight.remove(self.name(item))
        if failure and self._live is not None:
            from rich.markup import escape

            self._live.console.print(
                f"[bold red]✗[/bold red] [bold]{escape(self.name(item))}[/bold]: {escape(failure)}"
            )
        self._refresh()

    def say(self, text: str) -> None:
        if self._live is not None:
            self._live.console.print(f"[yellow]{text}[/yellow]")
        else:
            print(f"sshd-setup: {text}", file=sys.stderr, flush=True)

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._render())


def _nothing() -> None:
    return None


@dataclass
class Outcome(Generic[R]):
    results: dict[str, R]
    """Every item that was worked on, by name; the others were never started."""
    stopped_by: str | None = None
    """'interrupt' or 'max-fail' when hosts were left unstarted."""
    elapsed: float = 0.0


def run_hosts(
    items: Sequence[T],
    *,
    name: Callable[[T], str],
    work: Callable[[T], R],
    failure: Callable[[R], str | None],
    forks: int,
    serial: Amount | None = None,
    max_fail: Amount | None = None,
    interrupt: Interrupt,
    live: Live[T],
    meanwhile: Callable[[], None] = lambda: None,
) -> Outcome[R]:
    """Work on every item, forks at a time, batch after batch; stop starting items on Ctrl-C or when the
    failures (`failure` says why an item failed, None when fine) exceed --max-fail, checked between batches.
    `meanwhile` runs on this thread once, right after the first items are started."""
    started = time.monotonic()
    outcome: Outcome[R] = Outcome({})
    failed = done = 0
    with ThreadPoolExecutor(max_workers=max(1, min(forks, len(items)))) as pool:
        for batch in batches(items, serial):
            if interrupt.stopped:
                outcome.stopped_by = "interrupt"
                break
            if over_budget(failed, done, max_fail):
                outcome.stopped_by = "max-fail"
                live.say(f"stopping: {failed} failed host(s) exceed --max-fail; the rest are not started")
                break
            waiting = list(batch)
            flying: dict[Future[R], T] = {}
            while waiting or flying:
                while waiting and len(flying) < forks and not interrupt.stopped:
                    item = waiting.pop(0)
                    live.started(item)
                    flying[pool.submit(work, item)] = item
                meanwhile()
                meanwhile = _nothing
                if not flying:
                    break
                finished, _ = wait(flying, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
                for future in finished:
                    item = flying.pop(future)
                    result = future.result()
                    outcome.results[name(item)] = result
                    problem = failure(result)
                    failed += problem is not None
                    done += 1
                    live.finished(item, problem)
                notice = interrupt.notice(len(flying))
                if notice:
                    live.say(notice)
    if interrupt.presses:  # also when Ctrl-C came during the last hosts: the run was interrupted
        outcome.stopped_by = "interrupt"
    outcome.elapsed = time.monotonic() - started
    return outcome
