"""Run control (sshd_setup/runcontrol.py) with plain work functions: batches, --max-fail, Ctrl-C."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from sshd_setup.errors import InputError
from sshd_setup.runcontrol import Amount, Interrupt, Live, batches, over_budget, parse_amount, run_hosts


def _run(items: list[str], work, **kwargs):  # type: ignore[no-untyped-def]
    interrupt = kwargs.pop("interrupt", Interrupt())
    return run_hosts(
        items,
        name=str,
        work=work,
        failure=lambda result: None if result == "ok" else result,
        interrupt=interrupt,
        live=Live("test", len(items), str, enabled=False),
        **kwargs,
    )


def test_amounts_and_batches() -> None:
    assert parse_amount("--serial", "2", 1) == Amount(2)
    assert parse_amount("--serial", " 30% ", 1) == Amount(30, percent=True)
    assert parse_amount("--max-fail", "0", 0) == Amount(0)
    for bad in ("0", "x", "-1", "150%", "2.5"):
        with pytest.raises(InputError, match="--serial"):
            parse_amount("--serial", bad, 1)
    hosts = [f"h{n}" for n in range(10)]
    assert [len(b) for b in batches(hosts, Amount(3))] == [3, 3, 3, 1]
    assert [len(b) for b in batches(hosts, Amount(25, percent=True))] == [2, 2, 2, 2, 2]
    assert [len(b) for b in batches(hosts, Amount(1, percent=True))] == [1] * 10  # at least one host a batch
    assert batches(hosts, None) == [hosts]
    assert not over_budget(1, 2, Amount(1)) and over_budget(2, 2, Amount(1))
    assert over_budget(1, 4, Amount(20, percent=True)) and not over_budget(1, 5, Amount(20, percent=True))


def test_max_fail_stops_before_the_next_batch() -> None:
    hosts = [f"h{n}" for n in range(1, 9)]
    worked: list[str] = []

    def work(host: str) -> str:
        worked.append(host)
        return "boom" if host in ("h1", "h2") else "ok"

    outcome = _run(hosts, work, forks=4, serial=Amount(2), max_fail=Amount(1))
    assert sorted(worked) == ["h1", "h2"] and outcome.stopped_by == "max-fail"
    within = _run(hosts, work, forks=4, serial=Amount(2), max_fail=Amount(2))
    assert len(within.results) == 8 and within.stopped_by is None


def test_serial_batches_never_overlap() -> None:
    lock = threading.Lock()
    running: set[str] = set()
    seen: list[set[str]] = []

    def work(host: str) -> str:
        with lock:
            running.add(host)
            seen.append(set(running))
        threading.Event().wait(0.01)
        with lock:
            running.discard(host)
        return "ok"

    _run([f"h{n}" for n in range(6)], work, forks=6, serial=Amount(2))
    batch_of = {f"h{n}": n // 2 for n in range(6)}
    assert all(len({batch_of[h] for h in together}) == 1 for together in seen)


def test_ctrl_c_stops_starting_hosts_and_finishes_those_in_flight(capsys: pytest.CaptureFixture[str]) -> None:
    interrupt = Interrupt()
    finished: list[str] = []

    def answered(presses: int) -> None:  # until the main thread has said something about this press
        for _ in range(500):
            if interrupt._told == presses:
                return
            threading.Event().wait(0.01)

    def work(host: str) -> str:
        if host == "h2":  # a real SIGINT, to the main thread, while h2 is in flight
            os.kill(os.getpid(), signal.SIGINT)
            answered(1)
            os.kill(os.getpid(), signal.SIGINT)
            answered(2)
        finished.append(host)
        return "ok"

    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when the suite runs as a background job
    with interrupt.installed():
        outcome = _run([f"h{n}" for n in range(1, 6)], work, forks=1, interrupt=interrupt)
    assert finished == ["h1", "h2"] and set(outcome.results) == {"h1", "h2"}
    assert outcome.stopped_by == "interrupt" and interrupt.presses == 2
    err = capsys.readouterr().err
    assert "starting no more hosts; finishing the 1 host in flight" in err
    assert "still finishing 1 host: a host stopped between its write and its verified reload" in err
    assert signal.getsignal(signal.SIGINT) is before  # put back
