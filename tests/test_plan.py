"""Planning: managed blocks first and last, idempotent, everything outside them preserved."""

from __future__ import annotations

from sshd_setup.core.blocks import BEGIN, END
from tests.helpers import DEBIAN_PACKAGED_DEFAULT, desired_from, plan_texts

MAIN = "/etc/ssh/sshd_config"
BASE = "# site config\nInclude /etc/ssh/sshd_config.d/*.conf\nUsePAM yes\nSubsystem sftp internal-sftp\n"
MIXED = {
    "principals": [
        {"user": "johndoe", "principal": "jdoe"},
        {"user": "vmuser", "principals": ["jdoe", "bwayne"], "file": "/etc/ssh/vmusers-list.txt"},
        {"user": "ops", "any_principal": True},
    ]
}


def replan(files: dict[str, str], settings: dict[str, object]) -> dict[str, str]:
    plan = plan_texts(desired_from(settings), files)
    return {**files, **{change.path: change.after for change in plan.files}}


def test_managed_top_block_is_the_very_first_thing_and_match_block_the_very_last() -> None:
    after = replan({MAIN: BASE}, MIXED)[MAIN]
    lines = after.splitlines()
    assert lines[0].startswith(BEGIN) and lines[2:4] == [
        "PubkeyAuthentication yes",
        "TrustedUserCAKeys /etc/ssh/ca.pub",
    ]
    assert lines[-1].startswith(END)
    assert lines[-2] == "Match all"
    assert "Match User johndoe" in lines and "    AuthorizedPrincipalsCommand /bin/echo 'jdoe'" in lines
    # The original lines, in order, untouched, between the two blocks.
    assert BASE in after


def test_replanning_is_a_noop_with_a_reason() -> None:
    once = replan({MAIN: BASE}, MIXED)
    plan = plan_texts(desired_from(MIXED), once, {"/etc/ssh"})
    assert plan.is_noop, [c.reason for c in plan.changes]
    assert "already matches" in plan.noop_reason()
    assert all(change.reason.startswith("unchanged") for change in plan.files)


def test_previous_block_is_replaced_not_duplicated_and_removed_mappings_disappear() -> None:
    once = replan({MAIN: BASE}, MIXED)
    fewer = {"principals": [{"user": "ops", "any_principal": True}]}
    plan = plan_texts(desired_from(fewer), once)
    main = next(c for c in plan.files if c.path == MAIN)
    assert main.after.count(BEGIN) == 2
    assert "johndoe" not in main.after and "Match User ops" in main.after
    assert main.reason == "update the principal mappings"
    none_left = plan_texts(desired_from({}), once)
    main = next(c for c in none_left.files if c.path == MAIN)
    assert main.after.count(BEGIN) == 1 and "Match" not in main.after
    assert "remove the principal mappings block" in main.reason


def test_every_byte_outside_managed_blocks_is_preserved_including_crlf_and_missing_final_newline() -> None:
    original = "Port 22\r\nUsePAM yes\r\nMatch Group sftp\r\n\tForceCommand internal-sftp"
    after = replan({MAIN: original}, MIXED)[MAIN]
    assert "Port 22\r\nUsePAM yes\r\nMatch Group sftp\r\n\tForceCommand internal-sftp\r\n" in after
    assert "\r\nMatch User johndoe\r\n" in after  # our lines follow the file's line endings
    assert after.count("\r\n") == after.count("\n")


def test_list_mode_plans_the_principals_file_and_its_directory() -> None:
    plan = plan_texts(desired_from({"principals": [{"user": "backup", "principals": ["a@x.org", "b"]}]}), {MAIN: BASE})
    principals = next(c for c in plan.files if c.path == "/etc/ssh/principals/backup")
    assert principals.after.splitlines()[1:] == ["a", "b"]
    assert (principals.mode, principals.owner) == (0o644, "root")
    assert plan.directories == ("/etc/ssh/principals",)


def test_ca_file_holds_exactly_the_desired_keys() -> None:
    plan = plan_texts(desired_from({}), {MAIN: BASE})
    ca = next(c for c in plan.files if c.path == "/etc/ssh/ca.pub")
    keys = [line for line in ca.after.splitlines() if line and not line.startswith("#")]
    assert len(keys) == 1 and keys[0].startswith("ecdsa-sha2-nistp256 ")
    assert ca.before is None and ca.reason.startswith("create: trust CA SHA256:")


def test_damaged_markers_block_the_plan_with_a_finding() -> None:
    once = replan({MAIN: BASE}, MIXED)
    damaged = once[MAIN].replace("# END sshd-setup managed block: gateway CA\n", "")
    plan = plan_texts(desired_from(MIXED), {MAIN: damaged})
    assert [f.code for f in plan.errors] == ["MANAGED-BLOCK-DAMAGED"]
    assert plan.files == ()


def test_vendor_config_without_etc_sshd_config_is_included_not_dropped() -> None:
    plan = plan_texts(desired_from(MIXED), {"/usr/etc/ssh/sshd_config": "UsePAM yes\n"})
    main = next(c for c in plan.files if c.path == MAIN)
    assert main.before is None
    assert "Include /usr/etc/ssh/sshd_config" in main.after
    assert main.after.index("Include /usr/etc/ssh/sshd_config") < main.after.index("Match User")


def test_foreign_ca_keys_are_kept_when_merging() -> None:
    old = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKcOoxoB7tvMZSxTLcTtdDCD0fGxdFMx+ECuyTi4Sd35 old-ca"
    files = {MAIN: "TrustedUserCAKeys /etc/ssh/old_ca.pub\n", "/etc/ssh/old_ca.pub": old + "\n"}
    plan = plan_texts(desired_from({"foreign_ca_keys": "merge"}), files)
    ca = next(c for c in plan.files if c.path == "/etc/ssh/ca.pub")
    assert old in ca.after and "Kept from /etc/ssh/old_ca.pub" in ca.after
    plain = plan_texts(desired_from({}), files)
    assert old not in next(c for c in plain.files if c.path == "/etc/ssh/ca.pub").after


def test_debian_default_plan_is_stable() -> None:
    text = DEBIAN_PACKAGED_DEFAULT.read_text() if DEBIAN_PACKAGED_DEFAULT.exists() else BASE
    once = replan({MAIN: text}, MIXED)
    twice = replan(once, MIXED)
    assert once == twice
