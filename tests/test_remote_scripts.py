"""The host-side shell functions of sshd_setup/remote/apply.sh, run for real by this machine's /bin/sh.

The integration tests run the whole script on container hosts; these pin down the pieces whose edge
cases a converging host rarely shows: seeing sshd's re-exec through its pid file, and staging exact
bytes. (Backups, the lock and compare-and-swap: tests/test_host_state.py.)
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

from sshd_setup.remote import script

APPLY = script("apply.sh")


def sh(body: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run body after loading apply.sh's functions (its top level only defines things)."""
    return subprocess.run(["sh", "-c", APPLY + "\n" + body], capture_output=True, text=True, timeout=timeout)


def _reload(pidfile: str, reload: str, check: str, mark: str) -> tuple[str, float]:
    """Run reload_sshd MARK with the given RELOAD/CHECK commands; (what it printed, seconds it took)."""
    body = f"PIDFILE={pidfile}; RELOAD={reload!r}; CHECK={check!r}; "
    body += f'if reload_sshd {mark}; then echo UP; else echo "DOWN $STEP: $out"; fi'
    started = time.monotonic()
    proc = sh(body, timeout=60)
    return proc.stdout.strip() + proc.stderr, time.monotonic() - started


def test_reload_returns_once_the_new_sshd_writes_its_pid_file(tmp_path: Path) -> None:
    mark, pidfile = tmp_path / "staged.conf", tmp_path / "sshd.pid"
    pidfile.write_text("1\n")
    time.sleep(0.02)  # file times tick in jiffies: the mark must be newer than the old pid file
    mark.write_text("new config\n")

    def reexec() -> None:  # what sshd does on SIGHUP: remove the pid file, re-exec, bind, write it anew
        time.sleep(0.2)
        pidfile.unlink()
        time.sleep(0.3)
        pidfile.write_text("1\n")

    thread = threading.Thread(target=reexec)
    thread.start()
    try:
        # CHECK fails: a success can only come from the pid file
        said, waited = _reload(str(pidfile), "true", "false", str(mark))
    finally:
        thread.join()
    assert said == "UP"
    assert waited >= 0.5  # not before the new pid file existed


def test_reload_without_a_new_pid_file_asks_the_init_system(tmp_path: Path) -> None:
    mark, pidfile = tmp_path / "staged.conf", tmp_path / "sshd.pid"
    mark.write_text("new config\n")
    pidfile.write_text("1\n")
    os.utime(pidfile, (time.time() - 60, time.time() - 60))  # older than the mark: not a reloaded sshd
    said, waited = _reload(str(pidfile), "true", "true", str(mark))
    assert said == "UP" and waited >= 3  # gave the pid file its 3 s, then took the init system's word
    said, _ = _reload(str(pidfile), "true", "false", str(mark))
    assert said == "DOWN inactive: sshd is not active after the reload"


def test_reload_with_no_pid_file_to_watch_goes_straight_to_the_init_system(tmp_path: Path) -> None:
    mark = tmp_path / "staged.conf"
    mark.write_text("new config\n")
    for pidfile in ("none", str(tmp_path / "absent.pid")):
        said, waited = _reload(pidfile, "true", "true", str(mark))
        assert said == "UP" and waited < 2, pidfile
    said, _ = _reload("none", "echo refused; false", "true", str(mark))
    assert said == "DOWN reload: refused"


TRICKY = [
    "PubkeyAuthentication yes\nTrustedUserCAKeys /etc/ssh/ca.pub\n",
    'it\'s "quoted" \\n %s %% $HOME `id` $(id)\r\nno newline at the end',
    "-starts with a dash\n\n\n",
    "caf\udcc3\udca9 (not UTF-8: one raw byte each)\n",
    "with a NUL \0 byte (base64 then)\n",
]


def test_staged_files_hold_exactly_the_planned_bytes(tmp_path: Path) -> None:
    from sshd_setup.core.service import ServicePlan
    from sshd_setup.remote import HostLock, apply_script

    service = ServicePlan("systemd", "ssh", "true", "true", "true", "test")
    files = [(str(tmp_path / f"f{i}"), text, (0o644, "root", "root")) for i, text in enumerate(TRICKY)]
    generated = apply_script(
        run_id="20261124T000000Z-abc123",
        keep=5,
        reload=False,
        service=service,
        main="/nonexistent",
        directories=(),
        files=files,
        lock=HostLock(f"{tmp_path}/lock", f"{tmp_path}/unused"),
    )
    assert generated.endswith("run_apply\n")
    body = generated.removesuffix("run_apply\n") + '[ -z "$STAGE_FAILED" ] && install_staged\n'
    proc = subprocess.run(["sh", "-s"], input=body.encode("utf-8", "surrogateescape"), capture_output=True, timeout=30)
    assert proc.returncode == 0 and b"@@STEP installed" in proc.stdout, proc.stderr
    for path, text, _ in files:
        assert Path(path).read_bytes() == text.encode("utf-8", "surrogateescape"), path


def _facts_functions(*names: str) -> str:
    """The definitions of these functions in facts.sh (its top level gathers facts, so not the whole script)."""
    import re

    text = script("facts.sh")
    found = [re.search(rf"^{name}\(\) {{\n.*?^}}\n", text, re.M | re.S) for name in names]
    assert all(found), names
    return "r() { printf '@@%s\\n' \"$*\"; }\n" + "".join(m.group(0) for m in found if m)


def test_start_options_are_words_not_patterns(tmp_path: Path) -> None:
    """sshd gets ExecStart's `-f` argument as written (systemd expands no globs): facts.sh must not either."""
    (tmp_path / "sshd_config_gw").write_text("")
    unit = tmp_path / "ssh.service"
    unit.write_text(f"[Service]\nExecStart=/usr/sbin/sshd -D -f {tmp_path}/sshd_*\n")
    body = _facts_functions("unitlines", "startwords") + f'START_MAIN=""; unitlines ssh.service {unit}; '
    body += 'echo "main=$START_MAIN"; for f in ' + f"{tmp_path}/sshd_*" + '; do echo "glob=$f"; done'
    proc = subprocess.run(["sh", "-c", body], capture_output=True, text=True, timeout=30)
    assert f"main={tmp_path}/sshd_*\n" in proc.stdout, proc.stdout + proc.stderr
    assert f"glob={tmp_path}/sshd_config_gw" in proc.stdout  # globbing is on again afterwards
