"""The host-side lock, compare-and-swap, whole-state backups and proved restores (remote/state.sh), run for
real by this machine's /bin/sh on files under tmp_path. The integration tests run them on container hosts.
"""

from __future__ import annotations

import fcntl
import hashlib
import subprocess
import time
from pathlib import Path
from typing import IO

import pytest

from sshd_setup.core.service import ServicePlan
from sshd_setup.gather import facts_script
from sshd_setup.remote import HOST_LOCK, HostLock, ScriptHeader, apply_script, rollback_script, script
from tests.helpers import desired_from

FUNCTIONS = script("apply.sh") + "\n" + script("state.sh")
RUN_A = "20261201T100000Z-aaaaaa"
RUN_B = "20261201T100000Z-bbbbbb"
SERVICE = ServicePlan("systemd", "ssh", "true", "true", "true", "test")


def sh(tmp: Path, body: str, run: str = RUN_B, keep: int = 5) -> subprocess.CompletedProcess[str]:
    setup = f"BK_ROOT={tmp}/bk; BK_RUNS=$BK_ROOT/runs; LOCK_FILE={tmp}/lock; RUN={run}; KIND=apply; KEEP={keep}\n"
    return subprocess.run(["sh", "-c", FUNCTIONS + "\n" + setup + body], capture_output=True, text=True, timeout=30)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_held_lock_blocks_another_run_and_names_the_holder(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    with lock.open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        lock.write_text(f"{RUN_A} 4242 2026-12-01T10:00:00Z\n")
        other = sh(tmp_path, "take_lock; echo WROTE")
        same = sh(tmp_path, "take_lock; echo WENT-ON", run=RUN_A)
    assert other.returncode == 3 and "WROTE" not in other.stdout
    assert "@@FAIL lock" in other.stdout and f"held by run {RUN_A} 4242" in _output(other.stdout)
    assert "@@LOCK joined" in same.stdout and "WENT-ON" in same.stdout  # the guard's rollback of the same run
    assert lock.read_text().startswith(RUN_A)  # neither touched the holder's line


def test_a_dead_runs_lock_is_taken_over_and_a_clean_exit_releases_it(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    lock.write_text(f"{RUN_A} 4242 2026-12-01T10:00:00Z\n")  # its process is gone: nobody holds the flock
    proc = sh(tmp_path, f"take_lock; cat {lock}")
    assert proc.returncode == 0, proc.stderr
    assert f"@@LOCK took-over {RUN_A} 4242" in proc.stdout
    assert f"{RUN_B} " in proc.stdout  # the owner line while it held the lock
    assert lock.read_text() == ""  # released on exit: the next run takes over nothing
    assert "took-over" not in sh(tmp_path, "take_lock").stdout


def test_a_lock_freed_while_its_owner_line_is_empty_is_taken_not_reported_as_starting(tmp_path: Path) -> None:
    """A holder empties its line right before it lets go: a run that found the lock held in that moment
    must take the freed lock, not report "held by run (starting)" (seen in test_runs' race test)."""
    lock = tmp_path / "lock"
    with lock.open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # held, its line already emptied (release_lock's first step)
        waiting = subprocess.Popen(
            ["sh", "-c", FUNCTIONS + f"\nBK_RUNS={tmp_path}/bk/runs; LOCK_FILE={lock}; RUN={RUN_B}\ntake_lock"],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(0.3)  # it found the lock held and is waiting for the holder's line
    out = waiting.communicate(timeout=30)[0]
    assert waiting.returncode == 0 and "@@LOCK held" in out and "@@FAIL" not in out, out


def test_the_next_run_removes_a_cut_runs_leftovers(tmp_path: Path) -> None:
    target = tmp_path / "etc" / "ca.pub"
    target.parent.mkdir()
    target.write_text("ours\n")
    staged = target.parent / f".ca.pub.sshd-setup-new.{RUN_A}"
    restore_copy = target.parent / "ca.pub.sshd-setup-rb"
    partial = tmp_path / "bk" / "runs" / RUN_A  # a backup without its completion marker
    for path in (staged, restore_copy):
        path.write_text("half\n")
    (partial / "files").mkdir(parents=True)
    proc = sh(tmp_path, f"MANAGED={target}; take_lock")
    assert proc.returncode == 0, proc.stderr
    assert not staged.exists() and not restore_copy.exists() and not partial.exists()
    assert target.read_text() == "ours\n" and "@@CLEANED" in proc.stdout


def test_compare_and_swap_refuses_when_a_file_changed_since_the_facts(tmp_path: Path) -> None:
    config, new = tmp_path / "sshd_config", tmp_path / "ca.pub"
    config.write_text("Port 22\n")
    seen = digest(b"Port 22\n")
    ok = sh(tmp_path, f"expect {config} {seen}; expect {new} absent; cas_check; echo PASSED")
    assert "PASSED" in ok.stdout, ok.stdout + ok.stderr
    config.write_text("Port 22\nPasswordAuthentication no\n")  # another run wrote it in between
    new.write_text("someone's\n")
    refused = sh(tmp_path, f"expect {config} {seen}; expect {new} absent; cas_check; echo PASSED")
    assert refused.returncode == 3 and "PASSED" not in refused.stdout
    assert _output(refused.stdout) == f"changed since facts were read: {config} {new}"


def _output(stdout: str) -> str:
    import base64

    lines = stdout.splitlines()
    start = lines.index("@@OUTPUT") + 1
    return base64.b64decode("".join(lines[start : lines.index("@@EOF", start)])).decode().strip()


def _backup(tmp: Path, run: str, managed: str, new_dirs: str = "", keep: int = 5) -> subprocess.CompletedProcess[str]:
    proc = sh(tmp, f"MANAGED='{managed}'; NEW_DIRS='{new_dirs}'; backup '{managed}'", run=run, keep=keep)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_each_backup_is_a_complete_snapshot_and_new_paths_join_every_earlier_one(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    config, ca, listed = etc / "sshd_config", etc / "ca.pub", etc / "principals" / "vmuser"
    config.write_text("original\n")
    _backup(tmp_path, RUN_A, f"{config} {ca}", new_dirs="")  # ca.pub does not exist yet
    config.write_text("ours\n")
    ca.write_text("ca 1\n")
    _backup(tmp_path, RUN_B, f"{ca}", new_dirs=str(listed.parent))  # run B plans only ca.pub + a new file
    runs = tmp_path / "bk" / "runs"
    first, second = (runs / RUN_A / "manifest").read_text(), (runs / RUN_B / "manifest").read_text()
    # B's backup still covers sshd_config (managed before); A's gained the directory B adds, as it was then
    ours, ca_1, original = digest(b"ours\n"), digest(b"ca 1\n"), digest(b"original\n")
    assert f"existed {ours} {config}" in second and f"existed {ca_1} {ca}" in second
    assert f"nodir - {listed.parent}" in second and f"nodir - {listed.parent}" in first
    assert f"absent - {ca}" in first and f"existed {original} {config}" in first
    assert (runs / RUN_A / "complete").read_text().splitlines()[:3] == ["seq 1", "kind apply", "first 1"]
    assert (runs / RUN_B / "complete").read_text().splitlines()[:3] == ["seq 2", "kind apply", "first 0"]
    assert (runs / RUN_A / "files" / str(config).lstrip("/")).read_text() == "original\n"


def test_prune_keeps_exactly_keep_by_run_order_plus_the_first(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("x\n")
    # names sort in the opposite order to the runs (a host clock would be wrong here): order is the counter
    names = [f"2026120{9 - i}T000000Z-{i:06x}" for i in range(7)]
    for name in names:
        _backup(tmp_path, name, str(target), keep=3)
    left = sorted(p.name for p in (tmp_path / "bk" / "runs").iterdir())
    assert left == sorted([names[0], *names[-3:]])
    # a rollback restoring the oldest kept backup: its own new backup never prunes that one
    proc = sh(tmp_path, f"PROTECT={names[-3]}; MANAGED={target}; backup {target}", run=RUN_A, keep=3)
    assert proc.returncode == 0, proc.stderr
    left = sorted(p.name for p in (tmp_path / "bk" / "runs").iterdir())
    assert left == sorted([names[0], names[-3], names[-1], RUN_A])


def test_an_unfinished_backup_never_hides_the_last_real_one(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("x\n")
    _backup(tmp_path, RUN_A, str(target))
    (tmp_path / "bk" / "runs" / "20991231T235959Z-ffffff" / "files").mkdir(parents=True)  # disk was full
    proc = sh(tmp_path, 'list_backups; echo "LAST=$LAST FIRST=$FIRST_BK"')
    assert f"LAST={RUN_A} FIRST={RUN_A}" in proc.stdout


def test_a_restore_is_proved_by_hash(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    config, ca = etc / "sshd_config", etc / "ca.pub"
    config.write_text("original\n")
    _backup(tmp_path, RUN_A, f"{config} {ca}")
    config.write_text("ours\n")
    ca.write_text("ca\n")
    good = sh(tmp_path, f"restore_from {RUN_A}")
    assert f"@@RESTORED {RUN_A}" in good.stdout and config.read_text() == "original\n" and not ca.exists()
    config.write_text("ours\n")
    # the backup's copy went bad on disk: the restore copies it, and the hash says so
    (tmp_path / "bk" / "runs" / RUN_A / "files" / str(config).lstrip("/")).write_text("damaged\n")
    bad = sh(tmp_path, f"restore_from {RUN_A}")
    assert f"@@RESTORE-INCOMPLETE {config}" in bad.stdout and "@@RESTORED" not in bad.stdout
    gone = sh(tmp_path, "restore_from 20261201T000000Z-gone00")
    assert "@@RESTORE-INCOMPLETE (backup 20261201T000000Z-gone00 is gone)" in gone.stdout


@pytest.mark.parametrize("shell", ["dash", "bash"])
@pytest.mark.parametrize("has_run", [True, False], ids=["with-run", "without-run"])
def test_facts_sh_sees_the_lock_state_sh_takes_with_and_without_run(tmp_path: Path, shell: str, has_run: bool) -> None:
    """Both scripts get the lock's path and its fallback from one header line (remote.HostLock): the lock a
    run holds is the one the next run's facts report, on a host without /run too."""
    lock = HostLock(f"{tmp_path}/run/sshd-setup.lock", f"{tmp_path}/tmp/sshd-setup.lock")
    (tmp_path / "tmp").mkdir()
    if has_run:
        (tmp_path / "run").mkdir()
    header = ScriptHeader(run=RUN_A, kind="apply", keep=1, reload=False, service=SERVICE, main="/none", lock=lock)
    holding = header.render() + FUNCTIONS + f"\nBK_RUNS={tmp_path}/bk/runs\ntake_lock; echo READY; read -r _\n"
    holder = subprocess.Popen([shell, "-c", holding], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and "READY" in _lines_until(holder.stdout, "READY")
        facts = subprocess.run(
            [shell, "-s"], input=facts_script(desired_from({}), "", lock=lock), capture_output=True, text=True
        ).stdout
    finally:
        holder.communicate("", timeout=30)  # its shell exits: the EXIT trap releases the lock
    taken = Path(lock.path if has_run else lock.fallback)
    assert f"@@LOCKED {RUN_A} {holder.pid} " in facts and "@@END" in facts, facts
    assert taken.exists() and taken.read_text() == ""  # released: its line emptied
    assert (tmp_path / "run").exists() == has_run  # the fallback made no /run


def test_every_script_names_the_lock_by_the_one_header_line() -> None:
    main = "/etc/ssh/sshd_config"
    scripts = [
        facts_script(desired_from({})),
        apply_script(run_id=RUN_A, keep=1, reload=True, service=SERVICE, main=main, directories=(), files=[]),
        rollback_script(run_id=RUN_A, backup=RUN_B, reload=True, service=SERVICE, main=main),
    ]
    assert all(HOST_LOCK.shell() in text for text in scripts)
    assert all("sshd-setup.lock" not in script(name) for name in ("facts.sh", "apply.sh", "state.sh"))


def _lines_until(stream: IO[str], marker: str) -> str:
    seen = ""
    for line in stream:
        seen += line
        if marker in line:
            break
    return seen
