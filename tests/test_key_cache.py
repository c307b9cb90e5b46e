"""The controller's private key is parsed once per process, with its certificate, as paramiko pairs them."""

from __future__ import annotations

import subprocess
from pathlib import Path

from sshd_setup.sshclient import _private_key


def keygen(path: Path, passphrase: str = "") -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-f", str(path)], check=True)
    return path


def test_an_unencrypted_key_is_loaded_once_and_reused(tmp_path: Path) -> None:
    key = keygen(tmp_path / "id_ed25519")
    first = _private_key(str(key))
    assert first is not None and first.get_name() == "ssh-ed25519"
    assert _private_key(str(key)) is first


def test_a_replaced_key_file_is_read_again(tmp_path: Path) -> None:
    key = keygen(tmp_path / "id_ed25519")
    first = _private_key(str(key))
    key.unlink()
    keygen(key)
    second = _private_key(str(key))
    assert second is not None and first is not None
    assert second.get_fingerprint() != first.get_fingerprint()


def test_its_certificate_beside_it_is_loaded_with_it(tmp_path: Path) -> None:
    ca = keygen(tmp_path / "ca")
    key = keygen(tmp_path / "id_ed25519")
    subprocess.run(["ssh-keygen", "-q", "-s", str(ca), "-I", "test", "-n", "root", str(key) + ".pub"], check=True)
    loaded = _private_key(str(key))
    assert loaded is not None and loaded.public_blob is not None
    assert loaded.public_blob.key_type == "ssh-ed25519-cert-v01@openssh.com"


def test_a_key_that_needs_a_passphrase_or_is_no_key_is_left_to_paramiko(tmp_path: Path) -> None:
    assert _private_key(str(keygen(tmp_path / "locked", passphrase="secret words"))) is None
    (tmp_path / "not-a-key").write_text("hello\n")
    assert _private_key(str(tmp_path / "not-a-key")) is None
    assert _private_key(str(tmp_path / "missing")) is None
