"""Helpers for acceptance tests: a throwaway SSH CA, user certificates, and real login attempts.

    ca = make_ca(tmp_path)
    key = make_user_key(tmp_path, "alice")
    cert = ca.sign(key, ["jdoe"], validity="+10m")
    result = try_login(host, "johndoe", key, cert)
    assert result.success, result          # or: assert "principal" in result.reason

A login is a real `ssh` run from this machine (BatchMode, IdentitiesOnly, the fleet's known_hosts,
strict host key checking); the reason for a refusal is read from the host's journal (sshd's lines).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tests.testhosts._system import HarnessError

if TYPE_CHECKING:
    from tests.testhosts.fleet import Host


def _keygen(argv: list[str]) -> None:
    proc = subprocess.run(["ssh-keygen", *argv], capture_output=True, text=True, check=False, timeout=60)
    if proc.returncode != 0:
        raise HarnessError(f"ssh-keygen {' '.join(argv)} failed: {proc.stderr.strip()}")


def make_user_key(directory: Path, name: str, key_type: str = "ed25519") -> Path:
    """New passphrase-less key pair DIRECTORY/NAME (+ .pub); returns the private key's path."""
    directory.mkdir(parents=True, exist_ok=True)
    key = directory / name
    if key.exists():
        raise FileExistsError(key)
    _keygen(["-q", "-t", key_type, "-N", "", "-C", f"{name}@testhosts", "-f", str(key)])
    return key


@dataclass(frozen=True)
class CertificateAuthority:
    """A user CA: ``private_key`` signs, ``public_key`` is the line sshd's TrustedUserCAKeys holds."""

    private_key: Path

    @property
    def public_key_path(self) -> Path:
        return Path(f"{self.private_key}.pub")

    @property
    def public_key(self) -> str:
        return self.public_key_path.read_text().strip()

    def sign(
        self,
        key: Path,
        principals: Sequence[str],
        *,
        validity: str = "+10m",
        identity: str | None = None,
        serial: int | None = None,
        name: str | None = None,
    ) -> Path:
        """Sign KEY's public half for PRINCIPALS; returns the certificate's path.

        KEY may be the private or the ``.pub`` path. NAME (default: KEY's name plus the principals)
        names the certificate file, so one key can carry several certificates.
        """
        pub = Path(str(key) if str(key).endswith(".pub") else f"{key}.pub")
        stem = name or f"{pub.name.removesuffix('.pub')}-{'_'.join(principals) or 'none'}"
        copy = pub.with_name(f"{stem}.pub")
        if copy != pub:
            shutil.copyfile(pub, copy)
        argv = ["-q", "-s", str(self.private_key), "-I", identity or stem, "-V", validity]
        if principals:
            argv += ["-n", ",".join(principals)]
        if serial is not None:
            argv += ["-z", str(serial)]
        _keygen([*argv, str(copy)])
        cert = copy.with_name(f"{stem}-cert.pub")
        if not cert.is_file():
            raise HarnessError(f"ssh-keygen wrote no certificate at {cert}")
        return cert


def make_ca(directory: Path, name: str = "test-ca", key_type: str = "ed25519") -> CertificateAuthority:
    """A new throwaway CA key pair in DIRECTORY."""
    return CertificateAuthority(make_user_key(directory, name, key_type))


def certificate_text(cert: Path) -> str:
    """`ssh-keygen -L` of CERT (principals, validity, key id) for assertion messages."""
    proc = subprocess.run(["ssh-keygen", "-L", "-f", str(cert)], capture_output=True, text=True, check=False)
    return proc.stdout or proc.stderr


@dataclass(frozen=True)
class LoginResult:
    """Outcome of one real login attempt."""

    success: bool
    returncode: int
    stdout: str
    stderr: str
    journal: str  # sshd's journal lines logged during the attempt
    reason: str | None  # sshd's most telling message for a refusal (None on success or if unknown)

    def __str__(self) -> str:
        state = "logged in" if self.success else f"refused (rc {self.returncode})"
        return f"{state}; reason={self.reason!r}\nssh stderr: {self.stderr.strip()}\nsshd journal:\n{self.journal}"


#: sshd messages that explain a refusal, most specific first.
REASON_PATTERNS = (
    r"Certificate invalid: .*",
    r".*does not contain an authorized principal.*",
    r".*no matching principal.*",
    r".*not a listed principal.*",
    r"No user for AuthorizedPrincipalsCommand.*",
    r".*AuthorizedPrincipalsCommand.*",
    r".*(?:expired|not yet valid).*",
    r"Authentication refused: .*",
    r"Invalid user .*",
    r"error: .*",
    r"Failed publickey .*",
    r"User \S+ not allowed because .*",
)
_DONE = re.compile(
    r"Accepted \w+ for|Connection closed by|Disconnected from|Received disconnect|Invalid user|"
    r"Connection reset by|maximum authentication attempts"
)
_MESSAGE = re.compile(r"^\S+ \S+ [^:\s]+(?:\[\d+\])?: (.*)$")


def _messages(journal: str) -> list[str]:
    out = []
    for line in journal.splitlines():
        m = _MESSAGE.match(line)
        out.append(m.group(1) if m else line)
    return out


def refusal_reason(journal: str) -> str | None:
    """The most telling refusal message among sshd's journal lines, without timestamp and prefix."""
    messages = _messages(journal)
    for pattern in REASON_PATTERNS:
        rx = re.compile(pattern)
        for msg in messages:
            text = msg.removeprefix("error: ") if not pattern.startswith("error") else msg
            if rx.fullmatch(msg) or rx.fullmatch(text):
                return text
    return None


def try_login(
    host: Host,
    user: str,
    key: Path,
    cert: Path | None = None,
    *,
    command: str = "true",
    timeout: float = 30,
    journal_wait: float = 5.0,
    port: int = 22,
) -> LoginResult:
    """Attempt a real `ssh -i KEY [-o CertificateFile=CERT] -p PORT USER@HOST COMMAND` and explain the outcome."""
    fleet = host._fleet
    cursor = host.journal_cursor()
    argv = [
        "ssh",
        "-F",
        "/dev/null",
        "-i",
        str(key),
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "IdentityAgent=none",
        "-o",
        "PreferredAuthentications=publickey",
        "-o",
        f"UserKnownHostsFile={fleet.known_hosts_path}",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "ControlMaster=no",
        "-o",
        "ControlPath=none",
        "-o",
        "ConnectTimeout=10",
        "-o",
        "LogLevel=ERROR",
    ]
    if cert is not None:
        argv += ["-o", f"CertificateFile={cert}"]
    argv += ["-p", str(port), f"{user}@{host.address}", "--", command]
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False)
    # journald ingests asynchronously: wait until sshd's closing line for this attempt is there.
    deadline = time.monotonic() + journal_wait
    journal = host.journal_since(cursor)
    while not _DONE.search(journal) and time.monotonic() < deadline:
        time.sleep(0.1)
        journal = host.journal_since(cursor)
    success = proc.returncode == 0
    return LoginResult(
        success=success,
        returncode=proc.returncode,
        stdout=proc.stdout,
        stderr=proc.stderr,
        journal=journal,
        reason=None if success else refusal_reason(journal),
    )
