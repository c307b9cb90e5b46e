"""The CA file (TrustedUserCAKeys): exactly the inventory's keys, every line a key, root-owned, mode 0644."""

from __future__ import annotations

from sshd_setup.verification.checks import ca_key_problems, ca_line_problems, file_meta_problems
from sshd_setup.verification.target import VerifyHost, expect_none


def test_ca_keys(target: VerifyHost) -> None:
    """The CA file trusts exactly the inventory's CA keys (plus kept foreign keys with foreign_ca_keys: merge)."""
    path = target.desired.ca_path
    expect_none(ca_key_problems(path, target.read(path), target.desired))


def test_ca_lines_are_keys(target: VerifyHost) -> None:
    """Every line of the CA file that is not blank or a comment is a valid SSH public key."""
    path = target.desired.ca_path
    expect_none(ca_line_problems(path, target.read(path)))


def test_ca_owner_and_mode(target: VerifyHost) -> None:
    """The CA file is owned by root with mode 0644."""
    path = target.desired.ca_path
    file = target.host.file(path)
    exists = bool(file.exists)
    expect_none(file_meta_problems(path, exists, file.user if exists else "", file.mode if exists else 0))
