"""The real sshd as the judge: run `sshd -t` / `sshd -T` on a planned tree.

The tree is a directory standing for '/'. Its etc/ssh is bind-mounted over /etc/ssh in a private mount
namespace, so absolute Include paths, ca_path and principals files resolve exactly as on a host.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
_MOUNT_AND_RUN = (
    'mount --make-rprivate / && mkdir -p /run/sshd && mount --bind "$1/etc/ssh" /etc/ssh && shift && exec "$@"'
)


def unavailable_reason() -> str | None:
    """Why the oracle cannot run here, or None."""
    if not Path(SSHD).exists():
        return f"no sshd binary at {SSHD} (apt-get install openssh-server)"
    if os.geteuid() != 0:
        return "needs root to bind-mount a private /etc/ssh in a mount namespace"
    if shutil.which("unshare") is None:
        return "no unshare(1) (util-linux)"
    return None


@dataclass(frozen=True)
class SshdResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def values(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for line in self.stdout.splitlines():
            keyword, _, value = line.partition(" ")
            found.setdefault(keyword, []).append(value)
        return found

    def value(self, keyword: str) -> str:
        values = self.values().get(keyword)
        assert values, f"sshd -T printed no {keyword}: {self.stderr}"
        return values[0]


def run_sshd(tree: Path, *args: str) -> SshdResult:
    proc = subprocess.run(
        ["unshare", "--mount", "sh", "-c", _MOUNT_AND_RUN, "sh", str(tree), SSHD, *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    return SshdResult(proc.returncode, proc.stdout, proc.stderr)


def sshd_test(tree: Path) -> SshdResult:
    return run_sshd(tree, "-t", "-f", "/etc/ssh/sshd_config")


def sshd_effective(tree: Path, user: str | None = None, addr: str = "192.0.2.1") -> SshdResult:
    args = ["-T", "-f", "/etc/ssh/sshd_config"]
    if user is not None:
        args += ["-C", f"user={user},host=h,addr={addr}"]
    return run_sshd(tree, *args)


def make_host_keys(directory: Path) -> None:
    """Host keys for the tree (sshd -t refuses to run without one)."""
    (directory / "etc" / "ssh").mkdir(parents=True, exist_ok=True)
    subprocess.run(["ssh-keygen", "-A", "-f", str(directory)], check=True, capture_output=True)


def require_oracle() -> None:
    """Skip with the reason locally; in CI (CI=true) a missing prerequisite is a failure."""
    import pytest

    reason = unavailable_reason()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"sshd oracle cannot run in CI: {reason}")
    pytest.skip(reason)
