"""A fake host for unit tests of the orchestrator: replays what a real host printed, in milliseconds.

The answers are the real scripts' output, recorded on a bookworm test host by tests/fakehost/capture.py
(records/NAME.out), so the pipeline reads exactly the record format facts.sh, apply.sh and state.sh write.
A test queues one answer per script kind and per call, in order; a missing answer fails the test loudly.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from sshd_setup.delegated import host_entry
from sshd_setup.inventory import HostEntry
from sshd_setup.transport import CommandResult, ConnectOptions, SeparateScripts, Unreachable
from tests.helpers import CA_KEY

RECORDS = Path(__file__).parent / "records"
SETTINGS: dict[str, object] = {
    "ca_keys": [CA_KEY],
    "principals": [
        {"user": "johndoe", "principal": "jdoe@example.com"},
        {"user": "ops", "any_principal": True},
    ],
    "create_users": True,
}
SETTINGS_MORE: dict[str, object] = {
    **SETTINGS,
    "principals": [*SETTINGS["principals"], {"user": "vmuser", "principals": ["jdoe"]}],  # type: ignore[misc]
}


def kind_of(script: str) -> str:
    """facts, apply or rollback: which of the real scripts this is."""
    if "\nrun_apply\n" in script:
        return "apply"
    if "\nrollback_to " in script:
        return "rollback"
    if "\nSEND_BACKUP=" in script:
        return "facts"
    return "other"


def record(name: str) -> str:
    """A recorded output (records/NAME.out) as the host printed it."""
    return (RECORDS / f"{name}.out").read_text(encoding="utf-8", errors="surrogateescape")


def guard_restored() -> str:
    """The lockout guard's rollback of the recorded first apply: records/rollback-restored without the backup
    it took first (the guard's rollback_script has save=False) and with the lock re-entered by the same run."""
    text = record("rollback-restored")
    edited = text.replace("@@BACKUP 20261201T174940Z-003e6e\n", "").replace("@@LOCK held", "@@LOCK joined")
    assert edited.count("\n") == text.count("\n") - 1, "the recorded rollback changed: adapt the edit"
    return edited


def with_file(output: str, path: str, text: str | None) -> str:
    """Facts output with PATH's FILE record (base64, as facts.sh sends it) saying `text`; None: UNREADABLE."""
    head, found, rest = output.partition(f"@@FILE {path}\n")
    assert found, f"no FILE record of {path}"
    tail = rest.split("@@EOF\n", 1)[1]
    if text is None:
        return f"{head}@@UNREADABLE {path}\n{tail}"
    encoded = base64.encodebytes(text.encode("utf-8", "surrogateescape")).decode("ascii")
    return f"{head}@@FILE {path}\n{encoded}@@EOF\n{tail}"


def entry(settings: dict[str, object] | None = None, name: str = "deb1") -> HostEntry:
    """The host the records were captured on, as the inventory's entry (desired state from settings)."""
    return replace(host_entry(name, settings or SETTINGS, where=f"host {name}", base_dir=RECORDS), user="root")


Answer = str | CommandResult | Exception | Callable[[str], "str | CommandResult"]
"""Output (exit 0), a whole result, an exception to raise (e.g. Unreachable: the connection is cut), or a
function of the script sent."""


@dataclass
class FakeHost:
    """Transports (sshd_setup.transport.Transports) for one host: scripts answered from queues by kind.

    logins: the lockout guard's new logins, in order: True (a shell runs), False (login but no shell) or an
    Unreachable; the last one repeats. login_works, when set, decides instead (e.g. from what was sent).
    refuse: the session cannot be opened (the host is unreachable).
    """

    facts: list[Answer] = field(default_factory=list)
    apply: list[Answer] = field(default_factory=list)
    rollback: list[Answer] = field(default_factory=list)
    logins: list[bool | Exception] = field(default_factory=lambda: [True])
    sent: list[str] = field(default_factory=list)
    timeline: list[str] = field(default_factory=list)
    """Kinds of the scripts sent and 'login' for each new login, in order."""
    sessions: int = 0
    new_logins: int = 0
    closed: int = 0
    login_user: str = "root"
    login_works: Callable[[], bool | Exception] | None = None
    refuse: Exception | None = None

    def session(self, entry: HostEntry, options: ConnectOptions) -> FakeTransport:
        if self.refuse is not None:
            raise self.refuse
        self.sessions += 1
        return FakeTransport(self)

    def new_login(self, entry: HostEntry, options: ConnectOptions) -> FakeLogin:
        self.new_logins += 1
        self.timeline.append("login")
        if self.login_works is not None:
            return FakeLogin(self.login_works())
        answer = self.logins.pop(0) if len(self.logins) > 1 else self.logins[0]
        if isinstance(answer, Exception):
            raise answer
        return FakeLogin(answer)

    def kinds(self) -> list[str]:
        """The kinds of scripts sent so far, in order."""
        return [kind_of(s) for s in self.sent]

    def logins_after(self, kind: str) -> list[int]:
        """How many new logins followed each script of this kind, up to the next script."""
        counts: list[int] = []
        counting = False
        for step in self.timeline:
            if step != "login":
                counting = step == kind
                counts += [0] if counting else []
            elif counting:
                counts[-1] += 1
        return counts

    def answer(self, script: str) -> CommandResult:
        self.sent.append(script)
        kind = kind_of(script)
        self.timeline.append(kind)
        queue = {"facts": self.facts, "apply": self.apply, "rollback": self.rollback}.get(kind)
        if not queue:
            raise AssertionError(f"the fake host has no answer left for a {kind} script")
        reply = queue.pop(0)
        if isinstance(reply, Exception):
            raise reply
        if callable(reply):
            reply = reply(script)
        return reply if isinstance(reply, CommandResult) else CommandResult(0, reply, "")


class FakeTransport:
    """The session connection: every script goes to the host's queues; a shell is the same connection."""

    sshd_version = "OpenSSH_9.2p1 Debian-2+deb12u10"  # as the recording host's banner said

    def __init__(self, host: FakeHost) -> None:
        self.host = host
        self.round_trips = 0
        self.login_user = host.login_user

    def run_script(self, script: str, timeout: float | None = None) -> CommandResult:
        self.round_trips += 1
        return self.host.answer(script)

    def probe(self) -> bool:
        self.round_trips += 1
        return True

    def shell(self) -> SeparateScripts:
        return SeparateScripts(self)  # as the owner's connection of sshd_setup/delegated.py: a script each

    def close(self) -> None:
        self.host.closed += 1


@dataclass
class FakeLogin:
    """A new login of the lockout guard: probe() says whether a shell command runs (or raises: a cut)."""

    works: bool | Exception
    round_trips: int = 0
    sshd_version: str = ""

    def probe(self) -> bool:
        self.round_trips += 1
        if isinstance(self.works, Exception):
            raise self.works
        return self.works

    def close(self) -> None:
        return None


@dataclass
class VirtualClock:
    """Stands in for pipeline.py's `time`: sleep() advances monotonic() at once (the guard's retries take no time)."""

    now: float = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def cut(step: str) -> Unreachable:
    """The connection is lost while a script runs, as SshTransport reports it."""
    return Unreachable(f"connection to deb1 lost: {step}")
