"""sshd_config: the gateway CA block is the very first thing, the principal mappings block the very last."""

from __future__ import annotations

from sshd_setup.verification.checks import match_block_problems, top_block_problems
from sshd_setup.verification.target import VerifyHost, expect_none


def test_ca_block_first(target: VerifyHost) -> None:
    """The managed gateway CA block opens sshd_config (nothing above it) and matches the inventory."""
    path = target.main
    expect_none(top_block_problems(path, target.read(path), target.desired))


def test_match_block_last(target: VerifyHost) -> None:
    """The managed principal mappings block closes sshd_config (nothing below it) and matches the inventory."""
    path = target.main
    expect_none(match_block_problems(path, target.read(path), target.desired))
