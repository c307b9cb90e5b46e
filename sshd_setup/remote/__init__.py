"""Shell scripts that run on hosts (POSIX sh), loaded as package data; protocol.py reads what they print."""

from __future__ import annotations

import base64
import os
import shlex
from dataclasses import dataclass
from importlib.resources import files

from sshd_setup.core.service import ServicePlan


def script(name: str) -> str:
    return files(__package__).joinpath(name).read_text(encoding="utf-8")


FileMode = tuple[int, str, str]
"""(mode, owner, group) of a file to write."""


@dataclass(frozen=True)
class HostLock:
    """Where the per-host lock lives: `path`, or `fallback` on a host without path's directory (no /run).

    state.sh takes it, facts.sh reports its holder: both get the same `LOCK_FILE=...` line in their header
    (shell()), so both always name the same file."""

    path: str = "/run/sshd-setup.lock"
    fallback: str = "/tmp/sshd-setup.lock"

    def shell(self) -> str:
        directory = self.path.rsplit("/", 1)[0] or "/"
        path, fallback = shlex.quote(self.path), shlex.quote(self.fallback)
        return f"LOCK_FILE={path}; [ -d {shlex.quote(directory)} ] || LOCK_FILE={fallback}\n"


HOST_LOCK = HostLock()
"""THE host lock (tests pass another HostLock under a temporary directory)."""


@dataclass(frozen=True)
class ScriptHeader:
    """The variables apply.sh and state.sh read (listed at the top of each), quoted: the one place that
    writes them, for an apply, an uninstall and a rollback alike."""

    run: str
    kind: str
    keep: int
    reload: bool
    service: ServicePlan
    main: str
    managed: tuple[str, ...] = ()
    new_dirs: tuple[str, ...] = ()
    force_reload: bool = False
    pid_file: str = "none"
    test_hook: str = ""
    require_exec: tuple[str, ...] = ()
    lock: HostLock = HOST_LOCK

    def render(self) -> str:
        values = {
            "RUN": self.run,
            "KIND": self.kind,
            "MANAGED": " ".join(self.managed),
            "NEW_DIRS": " ".join(self.new_dirs),
            "KEEP": str(self.keep),
            "DO_RELOAD": "1" if self.reload else "0",
            "FORCE_RELOAD": "1" if self.force_reload else "0",
            "RELOAD": self.service.reload,
            "CHECK": self.service.check,
            "START": self.service.start,
            "MAIN": self.main,
            "PIDFILE": self.pid_file if self.service.rebinds else "none",
            "TEST_HOOK": self.test_hook,
            "REQUIRE_EXEC": " ".join(self.require_exec),
        }
        return "\n".join(f"{name}={shlex.quote(value)}" for name, value in values.items()) + "\n" + self.lock.shell()


TEST_HOOK_ENV = "SSHD_SETUP_TEST_HOOK"


def _test_hook() -> str:
    """Tests only: make the apply script fail on purpose at a given step (kill-after-install, fail-reload)."""
    return os.environ.get(TEST_HOOK_ENV, "")


def apply_script(
    *,
    run_id: str,
    keep: int,
    reload: bool,
    service: ServicePlan,
    main: str,
    directories: tuple[str, ...],
    files: list[tuple[str, str, FileMode | None]],
    users: tuple[str, ...] = (),
    pid_file: str = "none",
    expected: dict[str, str | None] | None = None,
    kind: str = "apply",
    managed: tuple[str, ...] = (),
    remove: tuple[str, ...] = (),
    unmapped: tuple[str, ...] = (),
    fix_directories: tuple[str, ...] = (),
    force_reload: bool = False,
    require_exec: tuple[str, ...] = (),
    lock: HostLock = HOST_LOCK,
) -> str:
    """The one command that stages, validates, backs up, installs and reloads.

    files: (absolute path, new text, (mode, owner, group) or None to copy the existing file's).
    pid_file: sshd's PidFile, whose rewrite shows the reload's re-exec is listening ('' = the default
    place; 'none' = wait for the init system's word).
    expected: path -> sha256 of the content the plan was made from (None: absent): compare-and-swap under
    the host's lock. managed: every path the plan covers (backed up, leftovers cleaned). kind 'uninstall':
    after the staged files, every other path goes back to the first backup's state (`remove`: without one).
    unmapped: principals files we wrote for mappings the inventory dropped: removed (and backed up first).
    force_reload: reload even when no file is written (the running sshd has not loaded the files on disk).
    require_exec: files that must be executable before anything changes (SshdSessionPath, SshdAuthPath).
    """
    parts = [
        ScriptHeader(
            run=run_id,
            kind=kind,
            keep=keep,
            reload=reload,
            service=service,
            main=main,
            managed=tuple(dict.fromkeys([*managed, *(f[0] for f in files), *unmapped])),
            new_dirs=directories,
            force_reload=force_reload,
            pid_file=pid_file,
            test_hook=_test_hook(),
            require_exec=require_exec,
            lock=lock,
        ).render(),
        script("apply.sh"),
        script("state.sh"),
        "take_lock\n",
    ]
    for path, digest in (expected or {}).items():
        parts.append(f"expect {shlex.quote(path)} {digest or 'absent'}\n")
    parts.append("cas_check\n")
    for path in remove:
        parts.append(f"remove {shlex.quote(path)}\n")
    # Users, new directories and the files in them: only once the assembled tree validated (run_apply).
    later = [f"ensure_user {shlex.quote(user)}\n" for user in users]
    later += [f"make_dir {shlex.quote(directory)}\n" for directory in directories]
    later += [f"fix_dir {shlex.quote(directory)}\n" for directory in fix_directories]
    for path, text, file_mode in files:
        mode, owner, group = ("-", "-", "-") if file_mode is None else (f"{file_mode[0]:o}", *file_mode[1:])
        args = " ".join(shlex.quote(a) for a in (path, mode, owner, group))
        if "\0" not in text:  # a quoted shell word holds any byte but NUL; printf writes it exactly
            line = f"stage {args} {shlex.quote(text)}\n"
        else:
            encoded = base64.encodebytes(text.encode("utf-8", "surrogateescape")).decode("ascii")
            line = f"stage {args} <<'SSHD_SETUP_EOF'\n{encoded}SSHD_SETUP_EOF\n"
        in_new_directory = any(path.startswith(directory + "/") for directory in directories)
        (later if in_new_directory else parts).append(line)
    if later:
        parts.append("after_validation() {\n" + "".join(later) + "}\n")
    parts += [f"remove_later {shlex.quote(path)}\n" for path in unmapped]
    parts.append("run_apply\n")
    return "".join(parts)


def rollback_script(
    *,
    run_id: str,
    backup: str,
    reload: bool,
    service: ServicePlan,
    main: str,
    save: bool = True,
    keep: int = 1000,
    lock: HostLock = HOST_LOCK,
) -> str:
    """The one command that restores backup `backup` under the host's lock, proved by hash, validated, reloaded.

    save: first a complete backup of the current state named run_id (not for the guard's rollback, whose
    run already took one). It waits for the init system's word: restored files keep their old times.
    """
    header = ScriptHeader(run=run_id, kind="rollback", keep=keep, reload=reload, service=service, main=main, lock=lock)
    body = f"rollback_to {shlex.quote(backup)} {1 if save else 0}\n"
    return header.render() + script("apply.sh") + script("state.sh") + body
