"""The host-side shell functions of sshd_setup/remote/apply.sh, run for real by this machine's /bin/sh.

The integration tests run the whole script on container hosts; these pin down the pieces whose edge
cases a converging host rarely shows: pruning old backups, the backup manifest, and seeing sshd's
re-exec through its listening sockets.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from pathlib import Path

from sshd_setup.remote import script

APPLY = script("apply.sh")


def sh(body: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run body after loading apply.sh's functions (its top level only defines things)."""
    return subprocess.run(["sh", "-c", APPLY + "\n" + body], capture_output=True, text=True, timeout=timeout)


def test_prune_keeps_the_newest_backups_and_ignores_other_names(tmp_path: Path) -> None:
    names = [f"2026110{day}T101010Z" for day in range(1, 7)] + ["20261106T101010Z-77", "notes", "1999"]
    for name in names:
        (tmp_path / name).mkdir()
    proc = sh(f"BK_ROOT={tmp_path}; KEEP=3; prune")
    assert proc.returncode == 0, proc.stderr
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["1999", "20261105T101010Z", "20261106T101010Z", "20261106T101010Z-77", "notes"]


def test_prune_with_fewer_backups_than_kept_removes_nothing(tmp_path: Path) -> None:
    (tmp_path / "20261101T101010Z").mkdir()
    assert sh(f"BK_ROOT={tmp_path}; KEEP=1; prune").returncode == 0
    assert (tmp_path / "20261101T101010Z").is_dir()


def test_backup_copies_what_existed_and_lists_what_is_new(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    (etc / "sub").mkdir(parents=True)
    (etc / "a.conf").write_text("old a\n")
    (etc / "sub" / "b.conf").write_text("old b\n")
    root = tmp_path / "backups"
    staged = f"{etc}/a.conf {etc}/sub/b.conf {etc}/new.conf"
    proc = sh(f"BK_ROOT={root}; KEEP=5; TS=20261124T000000Z; STAGED='{staged}'; backup")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "@@BACKUP 20261124T000000Z" in proc.stdout
    backup = root / "20261124T000000Z"
    assert (backup / "manifest").read_text().splitlines() == [
        f"existed {etc}/a.conf",
        f"existed {etc}/sub/b.conf",
        f"created {etc}/new.conf",
    ]
    assert (backup / "files" / str(etc).lstrip("/") / "sub" / "b.conf").read_text() == "old b\n"
    assert oct(root.stat().st_mode & 0o777) == "0o700"


def _listen(port: int = 0) -> socket.socket:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen()
    return server


def test_listeners_lists_the_sockets_listening_on_the_given_ports() -> None:
    server = _listen()
    port = server.getsockname()[1]
    try:
        found = sh(f"PORTS='22 {port}'; listeners").stdout.split()
        other = sh("PORTS='1'; listeners").stdout.split()
    finally:
        server.close()
    assert len(found) >= 1 and all(inode.isdigit() for inode in found)
    gone = sh(f"PORTS='{port}'; listeners").stdout.split()
    assert set(found) - set(gone) and not set(other) & set(found) - set(gone)


def test_wait_reexec_returns_once_the_old_socket_is_replaced() -> None:
    server = _listen()
    port = server.getsockname()[1]
    replaced: list[socket.socket] = []

    def reexec() -> None:  # what sshd does on SIGHUP: close, then bind anew a moment later
        time.sleep(0.3)
        server.close()
        time.sleep(0.2)
        replaced.append(_listen(port))

    thread = threading.Thread(target=reexec)
    thread.start()
    try:
        started = time.monotonic()
        proc = sh(f"PORTS='{port}'; BEFORE=$(listeners); wait_reexec && echo UP")
        waited = time.monotonic() - started
    finally:
        thread.join()
        for s in replaced:
            s.close()
    assert proc.stdout.strip() == "UP", proc.stderr
    assert waited >= 0.45  # not before the new socket existed


def test_wait_reexec_gives_up_when_nothing_listens_again() -> None:
    server = _listen()
    port = server.getsockname()[1]
    before = sh(f"PORTS='{port}'; listeners").stdout.split()
    server.close()
    proc = sh(f"PORTS='{port}'; BEFORE='{' '.join(before)}'; wait_reexec || echo DOWN", timeout=30)
    assert proc.stdout.strip() == "DOWN"


TRICKY = [
    "PubkeyAuthentication yes\nTrustedUserCAKeys /etc/ssh/ca.pub\n",
    'it\'s "quoted" \\n %s %% $HOME `id` $(id)\r\nno newline at the end',
    "-starts with a dash\n\n\n",
    "caf\udcc3\udca9 (not UTF-8: one raw byte each)\n",
    "with a NUL \0 byte (base64 then)\n",
]


def test_staged_files_hold_exactly_the_planned_bytes(tmp_path: Path) -> None:
    from sshd_setup.core.service import ServicePlan
    from sshd_setup.remote import apply_script

    service = ServicePlan("systemd", "ssh", "true", "true", "true", "test")
    files = [(str(tmp_path / f"f{i}"), text, (0o644, "root", "root")) for i, text in enumerate(TRICKY)]
    generated = apply_script(
        timestamp="20261124T000000Z",
        keep=5,
        reload=False,
        service=service,
        main="/nonexistent",
        directories=(),
        files=files,
    )
    assert generated.endswith("run_apply\n")
    body = generated.removesuffix("run_apply\n") + '[ -z "$STAGE_FAILED" ] && install_staged\n'
    proc = subprocess.run(["sh", "-s"], input=body.encode("utf-8", "surrogateescape"), capture_output=True, timeout=30)
    assert proc.returncode == 0 and b"@@STEP installed" in proc.stdout, proc.stderr
    for path, text, _ in files:
        assert Path(path).read_bytes() == text.encode("utf-8", "surrogateescape"), path
