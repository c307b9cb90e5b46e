"""Record a real host's answers for the fake host: `python -m tests.fakehost.capture INVENTORY [OUT_DIR]`.

INVENTORY is a booted test fleet's (tests/testhosts, one fresh bookworm host). Runs the real pipeline over
our own SSH connections through a recording Transports and writes each script's output, as the host
printed it, to OUT_DIR/NAME.out (default tests/fakehost/records; the tests pin the backup names in those).
Changes the host: use a fresh one and take it down after.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import yaml

from sshd_setup.core.desired import build_desired
from sshd_setup.core.runs import new_run_id
from sshd_setup.hostrestore import list_host, rollback_host
from sshd_setup.inventory import HostEntry, load_inventory
from sshd_setup.pipeline import RunOptions, run_host
from sshd_setup.remote import HOST_LOCK, TEST_HOOK_ENV
from sshd_setup.transport import CommandResult, ConnectOptions, Shell, Transport, connect
from tests.fakehost import SETTINGS, SETTINGS_MORE, kind_of

RECORDS = Path(__file__).parent / "records"
HOLD_LOCK = (  # another run holds the host's lock for 20 s (flock on fd 9, its owner line written)
    f'setsid sh -c \'exec 9>>{HOST_LOCK.path}; flock 9; echo "20261201T000000Z-other 1 now" > {HOST_LOCK.path};'
    " sleep 20' </dev/null >/dev/null 2>&1 &"
)


class RecordingShell:
    def __init__(self, shell: Shell, seen: list[tuple[str, CommandResult]]) -> None:
        self._shell, self._seen = shell, seen

    def run(self, script: str) -> CommandResult:
        result = self._shell.run(script)
        self._seen.append((script, result))
        return result

    def finish(self, script: str = "") -> CommandResult:
        return self._shell.finish(script)

    def close(self) -> None:
        self._shell.close()


class RecordingTransport:
    def __init__(self, transport: Transport, seen: list[tuple[str, CommandResult]]) -> None:
        self._transport, self._seen = transport, seen

    @property
    def round_trips(self) -> int:
        return self._transport.round_trips

    @round_trips.setter
    def round_trips(self, value: int) -> None:
        self._transport.round_trips = value

    @property
    def sshd_version(self) -> str:
        return self._transport.sshd_version

    @property
    def login_user(self) -> str:
        return str(getattr(self._transport, "login_user", ""))

    def run_script(self, script: str, timeout: float | None = None) -> CommandResult:
        result = self._transport.run_script(script, timeout)
        self._seen.append((script, result))
        return result

    def probe(self) -> bool:
        return self._transport.probe()

    def shell(self) -> RecordingShell:
        return RecordingShell(self._transport.shell(), self._seen)

    def close(self) -> None:
        self._transport.close()


class Recorder:
    def __init__(self, out: Path) -> None:
        self.seen: list[tuple[str, CommandResult]] = []
        self.out = out

    def session(self, entry: HostEntry, options: ConnectOptions) -> RecordingTransport:
        return RecordingTransport(connect(entry, options), self.seen)

    def new_login(self, entry: HostEntry, options: ConnectOptions) -> Transport:
        return connect(entry, options)

    def save(self, *names: str) -> None:
        """The outputs since the last save, one name each in order (facts, then apply or rollback)."""
        assert len(self.seen) == len(names), [kind_of(s) for s, _ in self.seen]
        for name, (script, result) in zip(names, self.seen, strict=True):
            if not name:
                continue
            assert kind_of(script) == name.split("-")[0], (name, kind_of(script))
            (self.out / f"{name}.out").write_text(result.stdout, encoding="utf-8", errors="surrogateescape")
            print(f"{name}: exit {result.returncode}, {len(result.stdout)} chars", file=sys.stderr)
        self.seen.clear()


def main(inventory: Path, out: Path = RECORDS) -> None:
    data = yaml.safe_load(inventory.read_text())
    data["all"]["vars"]["sshd_setup"] = SETTINGS
    with tempfile.TemporaryDirectory() as tmp:
        with_settings = Path(tmp) / "inventory.yml"
        with_settings.write_text(yaml.safe_dump(data))
        (host,) = load_inventory(with_settings).hosts.values()
    recorder = Recorder(out)
    base = RunOptions(transports=recorder)

    def entry(settings: dict[str, object]) -> HostEntry:
        return replace(host, desired=build_desired(settings, "capture", lambda f: ("", f)))

    first = run_host(entry(SETTINGS), base)
    print(first, file=sys.stderr)
    recorder.save("facts-fresh", "apply-changed")
    refused = rollback_host(entry(SETTINGS), base, None)  # the same run id: its backup name is taken
    print(refused, file=sys.stderr)
    recorder.save("facts-rollback", "rollback-refused")
    base = replace(base, run_id=new_run_id())
    back = rollback_host(entry(SETTINGS), base, None)
    print(back, file=sys.stderr)
    recorder.save("facts-rollback", "rollback-restored")
    base = replace(base, run_id=new_run_id())
    unreloaded = run_host(entry(SETTINGS), replace(base, reload=False))
    print(unreloaded, file=sys.stderr)
    recorder.save("facts-users-kept", "apply-not-reloaded")
    base = replace(base, run_id=new_run_id())
    forced = run_host(entry(SETTINGS), base)
    print(forced, file=sys.stderr)
    recorder.save("facts-pending", "apply-pending-reloaded")
    base = replace(base, run_id=new_run_id())
    again = run_host(entry(SETTINGS), base)
    print(again, file=sys.stderr)
    recorder.save("facts-converged")
    os.environ[TEST_HOOK_ENV] = "fail-reload"
    base = replace(base, run_id=new_run_id())
    failed = run_host(entry(SETTINGS_MORE), base)
    del os.environ[TEST_HOOK_ENV]
    print(failed, file=sys.stderr)
    recorder.save("facts-more", "apply-reload-failed")
    listed = list_host(entry(SETTINGS), base)
    print(listed, file=sys.stderr)
    recorder.save("facts-list")

    def on_host(command: str) -> Callable[[], bool]:
        """proceed(): between the facts and the apply script, change the host behind sshd-setup's back."""
        ssh = ["ssh", "-F", str(inventory.parent / "ssh_config"), host.name, command]
        return lambda: subprocess.run(ssh, check=True, stdin=subprocess.DEVNULL, timeout=30).returncode == 0

    bad_dropin = "printf 'NoSuchKeyword yes\\n' > /etc/ssh/sshd_config.d/zz-bad.conf"
    for name, change in (
        ("apply-validate-failed", bad_dropin),
        ("apply-cas-refused", "echo '# edited' >> /etc/ssh/sshd_config"),
        ("apply-lock-held", HOLD_LOCK),
    ):
        if name == "apply-cas-refused":  # the bad drop-in goes, sshd reloads: nothing pending again
            on_host("rm /etc/ssh/sshd_config.d/zz-bad.conf; sleep 1; systemctl reload ssh; sleep 1")()
        if name == "apply-lock-held":
            on_host("sed -i '/^# edited$/d' /etc/ssh/sshd_config; sleep 1; systemctl reload ssh; sleep 1")()
        base = replace(base, run_id=new_run_id())
        print(run_host(entry(SETTINGS_MORE), base, proceed=on_host(change)), file=sys.stderr)
        recorder.save("", name)


if __name__ == "__main__":
    main(Path(sys.argv[1]), *(Path(a) for a in sys.argv[2:3]))
