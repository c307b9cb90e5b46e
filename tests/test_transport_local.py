"""The local connection (ansible_connection: local): each script its own real `sh -s` on this machine."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from sshd_setup.transport import ConnectOptions, LocalTransport, Unreachable, connect, openssh_version
from tests.fakehost import entry


def local() -> LocalTransport:
    transport = connect(replace(entry(), connection="local"), ConnectOptions())
    assert isinstance(transport, LocalTransport)
    return transport


def test_each_script_of_a_local_shell_is_its_own_sh_with_its_exit_status() -> None:
    transport = local()
    shell = transport.shell()

    first = shell.run("X=1; printf 'out %s\\n' \"$X\"; echo err >&2; exit 3\n")
    second = shell.run('printf "X=%s\\n" "${X:-unset}"\n')  # a new sh: nothing carried over
    last = shell.finish("printf done\n")

    assert (first.returncode, first.stdout, first.stderr) == (3, "out 1\n", "err\n") and not first.ok
    assert (second.returncode, second.stdout) == (0, "X=unset\n")
    assert last.stdout == "done" and shell.finish().stdout == ""
    assert transport.round_trips == 3 and transport.probe() and transport.round_trips == 4
    assert transport.sshd_version == ""  # no banner: the facts script asks sshd -V


def test_a_local_script_past_its_timeout_is_unreachable() -> None:
    with pytest.raises(Unreachable, match="did not finish within 0s"):
        local().run_script("exec sleep 5\n", timeout=0.2)


def _running(pid: int) -> bool:
    """Alive and not a zombie (a killed child is reaped by its new parent a moment later)."""
    try:
        return ") Z " not in Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False


def test_a_timeout_also_ends_what_the_script_started(tmp_path: Path) -> None:
    """A child holding the output pipes must not keep the run waiting past the timeout, nor outlive it."""
    import time

    pid_file = tmp_path / "child.pid"
    started = time.monotonic()
    with pytest.raises(Unreachable, match="did not finish within 0s"):
        local().run_script(f"sleep 60 & echo $! > {pid_file}; wait\n", timeout=0.2)
    assert time.monotonic() - started < 30  # not the child's 60 s: it was killed with the script
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _running(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(child)


@pytest.mark.parametrize(
    ("banner", "version"),
    [
        ("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10", "OpenSSH_9.2p1 Debian-2+deb12u10"),
        ("SSH-2.0-OpenSSH_for_Windows_8.1", ""),  # no number where sshd-setup reads one: ask `sshd -V`
        ("SSH-2.0-dropbear_2022.83", ""),
        ("SSH-2.0-OpenSSH_9.6\x1b[2J", ""),  # not printable: never shown or trusted
    ],
)
def test_the_sshd_version_comes_only_from_an_openssh_banner(banner: str, version: str) -> None:
    assert openssh_version(banner) == version
