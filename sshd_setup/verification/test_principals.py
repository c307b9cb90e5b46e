"""Principals files of list-mode mappings: exactly the inventory's principals, root-owned, mode 0644."""

from __future__ import annotations

from sshd_setup.core.desired import Mapping
from sshd_setup.verification.checks import file_meta_problems, principals_problems
from sshd_setup.verification.plugin import only_modes
from sshd_setup.verification.target import VerifyHost, expect_none


@only_modes("list")
def test_principals_file(target: VerifyHost, mapping: Mapping) -> None:
    """The mapping's principals file lists exactly the inventory's principals."""
    assert mapping.file is not None
    expect_none(principals_problems(mapping.file, target.read(mapping.file), mapping))


@only_modes("list")
def test_principals_owner_and_mode(target: VerifyHost, mapping: Mapping) -> None:
    """The mapping's principals file is owned by root with mode 0644."""
    assert mapping.file is not None
    file = target.host.file(mapping.file)
    exists = bool(file.exists)
    expect_none(file_meta_problems(mapping.file, exists, file.user if exists else "", file.mode if exists else 0))
