"""transport.KnownHosts must trust exactly what paramiko.HostKeys trusts, on a file of every kind of line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import paramiko
import pytest

from sshd_setup.sshclient import KnownHosts


def _pub(tmp_path: Path, name: str, kind: str) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(tmp_path / name)], check=True)
    return " ".join((tmp_path / f"{name}.pub").read_text().split()[:2])


@pytest.fixture
def known_hosts(tmp_path: Path) -> Path:
    ed, ec, ed2 = _pub(tmp_path, "a", "ed25519"), _pub(tmp_path, "b", "ecdsa"), _pub(tmp_path, "c", "ed25519")
    hashed = paramiko.HostKeys.hash_host("10.0.0.9")
    lines = [
        "# a comment",
        "",
        f"10.0.0.1,web1 {ed}",
        f"10.0.0.1 {ec}",
        f"[10.0.0.2]:2222 {ed2}",
        f"{hashed} {ec}",
        "10.0.0.3 ssh-ed25519 not-base64!!",
        "10.0.0.4 ssh-unknown-type AAAA",
        "just-one-field",
        f"  10.0.0.5 {ed}  ",
    ]
    path = tmp_path / "known_hosts"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("name", ["10.0.0.1", "web1", "[10.0.0.2]:2222", "10.0.0.2", "10.0.0.9", "10.0.0.5", "nope"])
def test_lookup_agrees_with_paramiko(known_hosts: Path, name: str) -> None:
    text = known_hosts.read_text()
    ours = {kind: key.get_base64() for kind, key in KnownHosts(text).lookup(name)}
    # paramiko's own loader refuses the file because of the invalid base64 line: give it the valid ones.
    theirs_file = known_hosts.with_name("valid")
    theirs_file.write_text("".join(line + "\n" for line in text.splitlines() if "not-base64" not in line))
    theirs = {kind: key.get_base64() for kind, key in (paramiko.HostKeys(str(theirs_file)).lookup(name) or {}).items()}
    assert ours == theirs


def test_invalid_lines_trust_nothing(known_hosts: Path) -> None:
    index = KnownHosts(known_hosts.read_text())
    assert index.lookup("10.0.0.3") == []
    assert index.lookup("10.0.0.4") == []
