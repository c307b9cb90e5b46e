"""The host's own sshd says what is in force: `sshd -T` globally and `sshd -T -C user=…` per mapping."""

from __future__ import annotations

from sshd_setup.core.desired import Mapping
from sshd_setup.verification.checks import (
    global_effective_problems,
    mapping_effective_problems,
    unmapped_effective_problems,
    unmapped_user,
)
from sshd_setup.verification.target import VerifyHost, expect_none


def test_effective_global(target: VerifyHost) -> None:
    """sshd -T: pubkeyauthentication yes, trustedusercakeys is the CA file, port 22 among the ports."""
    expect_none(global_effective_problems(target.sshd_t(), target.desired))


def test_effective_mapping(target: VerifyHost, mapping: Mapping) -> None:
    """sshd -T -C user=<mapped user>: the mapping's principals file or command (and command user) apply."""
    config = target.sshd_t(target.connection_spec(mapping.user))
    expect_none(mapping_effective_problems(config, mapping, target.desired))


def test_unmapped_user_unaffected(target: VerifyHost) -> None:
    """sshd -T -C user=<a user no mapping names>: none of the mappings' principals settings apply."""
    user = unmapped_user(target.desired)
    config = target.sshd_t(target.connection_spec(user))
    expect_none(unmapped_effective_problems(config, target.desired, user))
