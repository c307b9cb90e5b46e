"""Pre-flight findings, one check at a time, each on a real configuration tree (tests/fixtures/findings).

Where a finding is a claim about effective values ("this line used to win, that one wins now", "ours would
be ignored", "sshd listens on 2222 only"), the test asks the real sshd (`sshd -T`, `sshd -t`) the same
question, before and after the plan is written into the tree.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sshd_setup.commands.lint import lint_findings, local_sshd_version
from sshd_setup.core import findings as findings_module
from sshd_setup.core.desired import Desired
from sshd_setup.core.facts import FileMeta, HostFacts, UnitState, UserInfo
from sshd_setup.core.finding import Finding, Severity
from sshd_setup.core.findings import LEGACY_NOTE, MODERN_NOTE, find_problems
from sshd_setup.core.openssh import apc_last_wins
from sshd_setup.core.plan import Plan
from sshd_setup.core.sshkeys import parse_key_file
from sshd_setup.core.tree import SnapshotEntry
from sshd_setup.offline import offline_facts
from tests.helpers import DEBIAN_PACKAGED_DEFAULT, FIXTURES, apply_plan_to_dir, desired_from
from tests.sshd_oracle import make_host_keys, require_oracle, sshd_effective, sshd_test

CASES = FIXTURES / "findings"
OLD_CA_FINGERPRINT = parse_key_file((CASES / "foreign-ca/etc/ssh/old_ca.pub").read_text())[0].fingerprint
SINGLE = {"user": "johndoe", "principal": "jdoe@example.com"}
MIXED = {
    "principals": [
        SINGLE,
        {"user": "vmuser", "principals": ["jdoe", "bwayne"], "file": "/etc/ssh/vmusers-list.txt"},
        {"user": "ops", "any_principal": True},
    ]
}


# ---------------------------------------------------------------- helpers


@pytest.fixture(scope="session")
def host_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_oracle()
    keys = tmp_path_factory.mktemp("hostkeys")
    make_host_keys(keys)
    return keys


def build(name: str, root: Path) -> Path:
    """Copy a fixture tree (or the Debian 12 packaged default for 'debian') into root, with sane modes."""
    if name == "debian":
        if not DEBIAN_PACKAGED_DEFAULT.exists():
            pytest.fail(f"{DEBIAN_PACKAGED_DEFAULT} missing: install openssh-server")
        (root / "etc/ssh/sshd_config.d").mkdir(parents=True, exist_ok=True)
        shutil.copy(DEBIAN_PACKAGED_DEFAULT, root / "etc/ssh/sshd_config")
    else:
        shutil.copytree(CASES / name, root, dirs_exist_ok=True)
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root


def with_keys(root: Path, host_keys: Path) -> Path:
    shutil.copytree(host_keys, root, dirs_exist_ok=True)
    return root


def lint(root: Path, desired: Desired | None = None, main: str | None = None) -> list[Finding]:
    return lint_findings(root=root, main=main, desired=desired)[1]


def plan_and_findings(root: Path, desired: Desired, version: str = "") -> tuple[Plan, list[Finding]]:
    """Plan and findings as apply sees them; version '' = unknown (findings for every OpenSSH version)."""
    facts, plan = offline_facts(root, desired.sshd_config, desired)
    facts.sshd_version_text = version
    assert plan is not None
    return plan, [*plan.findings, *find_problems(desired, facts, plan)]


def only(findings: list[Finding], code: str) -> list[Finding]:
    return [f for f in findings if f.code == code]


def one(findings: list[Finding], code: str) -> Finding:
    found = only(findings, code)
    assert len(found) == 1, f"expected one {code}, got {found}\nall: {findings}"
    return found[0]


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity is Severity.ERROR]


def at(findings: list[Finding], path: str, line: int) -> list[str]:
    return sorted(f.code for f in findings if (f.path, f.line) == (path, line))


MAIN = "/etc/ssh/sshd_config"
DEBIAN_INCLUDE_LINE = 12  # `Include /etc/ssh/sshd_config.d/*.conf` in Debian 12's packaged default


# ---------------------------------------------------------------- a clean tree


@pytest.mark.oracle
def test_debian_default_tree_has_no_errors_or_warnings_with_and_without_an_inventory(
    tmp_path: Path, host_keys: Path
) -> None:
    root = with_keys(build("debian", tmp_path), host_keys)
    assert sshd_test(root).ok
    plain = lint(root)
    assert [f.code for f in plain] == ["INCLUDE-NO-MATCH"]  # the empty sshd_config.d: info only
    assert plain[0].severity is Severity.INFO and (plain[0].path, plain[0].line) == (MAIN, DEBIAN_INCLUDE_LINE)
    desired = desired_from(MIXED)
    plan, found = plan_and_findings(root, desired)
    assert [f for f in found if f.severity is not Severity.INFO] == []
    apply_plan_to_dir(plan, root)
    assert sshd_test(root).ok
    assert [f.code for f in lint(root) if f.severity is not Severity.INFO] == []  # lint reads our own blocks


# ---------------------------------------------------------------- 1. Include order


@pytest.mark.oracle
def test_drop_ins_that_decide_today_and_lose_after_the_change_say_what_wins_before_and_after(
    tmp_path: Path, host_keys: Path
) -> None:
    root = with_keys(build("include-order", tmp_path), host_keys)
    before = {user: sshd_effective(root, user) for user in ("johndoe", "alice")}
    assert before["alice"].value("pubkeyauthentication") == "no"
    assert before["johndoe"].value("authorizedprincipalscommand") == "/usr/local/bin/team-principals %u"

    plain = lint(root)  # no inventory: the line that never wins is still worth knowing
    ignored = one(plain, "SETTING-IGNORED")
    assert (ignored.path, ignored.line) == (MAIN, 7)
    assert "10-hardening.conf:2" in ignored.message and "`PubkeyAuthentication no`" in ignored.message
    no_match = one(plain, "INCLUDE-NO-MATCH")
    assert (no_match.path, no_match.line, no_match.severity) == (MAIN, 3, Severity.INFO)

    desired = desired_from({"principals": [SINGLE]})
    plan, found = plan_and_findings(root, desired)
    assert errors(found) == []
    shadowed = {(f.path, f.line): f for f in only(found, "SETTING-SHADOWED")}
    assert set(shadowed) == {
        ("/etc/ssh/sshd_config.d/10-hardening.conf", 2),
        ("/etc/ssh/sshd_config.d/20-team-principals.conf", 2),
    }
    pubkey = shadowed[("/etc/ssh/sshd_config.d/10-hardening.conf", 2)].message
    assert "`PubkeyAuthentication no` decides PubkeyAuthentication now (at start-up" in pubkey
    assert "`PubkeyAuthentication yes` at /etc/ssh/sshd_config:3 (sshd-setup's managed block" in pubkey
    command = shadowed[("/etc/ssh/sshd_config.d/20-team-principals.conf", 2)].message
    assert "for logins as johndoe" in command and "at start-up" not in command
    assert "AuthorizedPrincipalsCommand /bin/echo 'jdoe'" in command
    assert not only(found, "SETTING-IGNORED")  # line 7 now agrees with the value that wins

    apply_plan_to_dir(plan, root)
    assert sshd_test(root).ok
    after = {user: sshd_effective(root, user) for user in ("johndoe", "alice")}
    assert after["alice"].value("pubkeyauthentication") == "yes"  # as the finding said
    assert after["johndoe"].value("authorizedprincipalscommand") == "/bin/echo 'jdoe'"
    # The team's command still decides for everyone else, which is why the finding names johndoe only.
    assert after["alice"].value("authorizedprincipalscommand") == "/usr/local/bin/team-principals %u"


@pytest.mark.oracle
def test_a_managed_block_below_an_include_is_reported_and_its_value_loses(tmp_path: Path, host_keys: Path) -> None:
    root = with_keys(build("block-not-first", tmp_path), host_keys)
    assert sshd_effective(root).value("trustedusercakeys") == "/etc/ssh/team_ca.pub"
    plain = lint(root)
    moved = one(plain, "BLOCK-NOT-FIRST")
    assert (moved.path, moved.line, moved.severity) == (MAIN, 1, Severity.WARNING)
    assert "`Include /etc/ssh/sshd_config.d/*.conf`" in moved.message
    ignored = one(plain, "MANAGED-SETTING-IGNORED")
    assert (ignored.path, ignored.line, ignored.severity) == (
        "/etc/ssh/sshd_config.d/50-team-ca.conf",
        1,
        Severity.ERROR,
    )
    assert "`TrustedUserCAKeys /etc/ssh/ca.pub`" in ignored.message

    plan, found = plan_and_findings(root, desired_from({}))
    assert "the plan moves the block" in one(found, "BLOCK-NOT-FIRST").hint
    assert not only(found, "MANAGED-SETTING-IGNORED")
    foreign = one(found, "FOREIGN-CA-KEYS")  # the drop-in's CA decides today and would stop working
    assert (foreign.path, foreign.line) == ("/etc/ssh/sshd_config.d/50-team-ca.conf", 1)
    apply_plan_to_dir(plan, root)
    assert sshd_effective(root).value("trustedusercakeys") == "/etc/ssh/ca.pub"


@pytest.mark.oracle
def test_include_inside_a_match_block_that_sets_principals(tmp_path: Path, host_keys: Path) -> None:
    root = with_keys(build("include-in-match", tmp_path), host_keys)
    inside = sshd_effective(root, "alice", addr="10.1.2.3")
    assert inside.value("authorizedprincipalsfile") == "/etc/ssh/internal_principals/%u"
    assert sshd_effective(root, "alice").value("authorizedprincipalsfile") == "none"
    finding = one(lint(root), "INCLUDE-IN-MATCH")
    assert (finding.path, finding.line, finding.severity) == (MAIN, 6, Severity.WARNING)
    assert "Match address 10.0.0.0/8" in finding.message and "AuthorizedPrincipalsFile" in finding.message

    desired = desired_from({"principals": [{"user": "johndoe", "principals": ["jdoe"]}]})
    plan, found = plan_and_findings(root, desired)
    maybe = one(found, "FOREIGN-MATCH-OVERRIDES")
    assert maybe.severity is Severity.WARNING and "depends on Address 10.0.0.0/8" in maybe.message
    assert (maybe.path, maybe.line) == ("/etc/ssh/internal.d/principals.conf", 1)
    apply_plan_to_dir(plan, root)
    assert sshd_effective(root, "johndoe", addr="10.1.2.3").value("authorizedprincipalsfile") == (
        "/etc/ssh/internal_principals/%u"
    )
    assert sshd_effective(root, "johndoe").value("authorizedprincipalsfile") == "/etc/ssh/principals/johndoe"


@pytest.mark.oracle
def test_include_loop_dangling_file_and_directory(tmp_path: Path, host_keys: Path) -> None:
    loop = with_keys(build("include-loop", tmp_path / "loop"), host_keys)
    assert not sshd_test(loop).ok
    found = one(lint(loop), "INCLUDE-LOOP")
    assert (found.path, found.line, found.severity) == ("/etc/ssh/sshd_config.d/10-loop.conf", 2, Severity.ERROR)

    dangling = with_keys(build("debian", tmp_path / "dangling"), host_keys)
    (dangling / "etc/ssh/sshd_config.d/20-gone.conf").symlink_to("/nonexistent/20-gone.conf")
    result = sshd_test(dangling)
    assert not result.ok and "20-gone.conf" in result.stderr
    unreadable = one(lint(dangling), "INCLUDE-UNREADABLE")
    assert (unreadable.path, unreadable.line, unreadable.severity) == (MAIN, DEBIAN_INCLUDE_LINE, Severity.ERROR)
    assert "20-gone.conf" in unreadable.message

    directory = with_keys(build("debian", tmp_path / "directory"), host_keys)
    (directory / "etc/ssh/sshd_config.d/30-dir.conf").mkdir()
    assert sshd_test(directory).ok  # sshd reads a directory as an empty file
    found_dir = one(lint(directory), "INCLUDE-IS-DIRECTORY")
    assert found_dir.severity is Severity.WARNING and not errors(lint(directory))


def test_an_included_file_the_facts_could_not_read_is_an_error() -> None:
    facts = HostFacts(
        files={
            MAIN: SnapshotEntry("Include /etc/ssh/sshd_config.d/*.conf\nUsePAM yes\n"),
            "/etc/ssh/sshd_config.d/10-secret.conf": SnapshotEntry(None, "permission denied or not a regular file"),
        }
    )
    found = one(find_problems(None, facts, None), "INCLUDE-UNREADABLE")
    assert (found.path, found.line) == (MAIN, 1) and "permission denied" in found.message


# ---------------------------------------------------------------- 2. ports


@pytest.mark.oracle
@pytest.mark.parametrize(
    ("case", "ports", "listen", "codes"),
    [
        ("port-2222", ["2222"], None, {("PORT-NOT-22", 2, "error"), ("NO-PORT-22", 2, "error")}),
        ("listen-port", ["22"], ["0.0.0.0:2200"], {("LISTEN-PORT-NOT-22", 2, "error"), ("NO-PORT-22", 2, "error")}),
        ("extra-port", ["22", "2222"], None, {("PORT-NOT-22", 2, "error")}),
        ("debian", ["22"], None, set()),
    ],
)
def test_ports_other_than_22(
    case: str,
    ports: list[str],
    listen: list[str] | None,
    codes: set[tuple[str, int, str]],
    tmp_path: Path,
    host_keys: Path,
) -> None:
    root = with_keys(build(case, tmp_path), host_keys)
    effective = sshd_effective(root).values()
    assert effective["port"] == ports
    if listen is not None:
        assert effective["listenaddress"] == listen
    found = lint(root)
    assert {(f.code, f.line, f.severity.value) for f in found if "PORT" in f.code} == codes


def test_socket_activated_host_whose_socket_does_not_listen_on_22(tmp_path: Path) -> None:
    root = build("ubuntu-socket", tmp_path)
    wants = root / "etc/systemd/system/sockets.target.wants"
    wants.mkdir(parents=True)
    (wants / "ssh.socket").symlink_to("/usr/lib/systemd/system/ssh.socket")
    found = lint(root)
    socket = one(found, "SOCKET-NO-PORT-22")
    assert socket.severity is Severity.ERROR and "0.0.0.0:2222" in socket.message
    assert socket.path == "/etc/systemd/system/ssh.socket.d/addresses.conf"
    assert one(found, "SOCKET-ADDRESSES-DROPIN").severity is Severity.WARNING
    assert not only(found, "NO-PORT-22")  # sshd_config itself says 22; the socket decides

    (root / "etc/systemd/system/ssh.socket.d/addresses.conf").write_text("[Socket]\nListenStream=\nListenStream=22\n")
    found = lint(root)
    assert not only(found, "SOCKET-NO-PORT-22") and only(found, "SOCKET-ADDRESSES-DROPIN")
    (wants / "ssh.socket").unlink()  # not socket-activated: the socket unit is irrelevant
    assert not [f for f in lint(root) if f.code.startswith("SOCKET")]


@pytest.mark.parametrize(
    ("listen", "bad"), [(("[::]:2222",), True), (("[::]:22", "0.0.0.0:22"), False), (("22",), False)]
)
def test_socket_listen_lines_as_gathered(listen: tuple[str, ...], bad: bool) -> None:
    facts = HostFacts(
        files={MAIN: SnapshotEntry((CASES / "ubuntu-socket/etc/ssh/sshd_config").read_text())},
        units={"ssh.socket": UnitState("ssh.socket", "loaded", "active", "enabled", listen)},
    )
    assert bool(only(find_problems(None, facts, None), "SOCKET-NO-PORT-22")) is bad


# ---------------------------------------------------------------- 3. a foreign TrustedUserCAKeys


@pytest.mark.oracle
@pytest.mark.parametrize("mode", ["refuse", "merge", "replace"])
def test_an_existing_ca_file_is_never_dropped_silently(mode: str, tmp_path: Path, host_keys: Path) -> None:
    root = with_keys(build("foreign-ca", tmp_path), host_keys)
    assert sshd_effective(root).value("trustedusercakeys") == "/etc/ssh/old_ca.pub"
    desired = desired_from({"foreign_ca_keys": mode, "principals": [SINGLE]})
    plan, found = plan_and_findings(root, desired)
    assert at(found, MAIN, 3) == [
        {"refuse": "FOREIGN-CA-KEYS", "merge": "FOREIGN-CA-MERGED", "replace": "FOREIGN-CA-REPLACED"}[mode]
    ]
    finding = next(f for f in found if (f.path, f.line) == (MAIN, 3))
    assert OLD_CA_FINGERPRINT in finding.message
    if mode == "refuse":
        assert finding.severity is Severity.ERROR
        assert finding.hint == "set sshd_setup.foreign_ca_keys: merge (keep their keys in our file) or replace"
    elif mode == "merge":
        assert finding.severity is Severity.INFO
        assert [k.fingerprint for k in plan.kept_ca_keys] == [OLD_CA_FINGERPRINT]
    else:
        assert finding.severity is Severity.WARNING and "stop being trusted" in finding.message
    apply_plan_to_dir(plan, root)
    # What the findings claim: after the change sshd reads our file only.
    assert sshd_effective(root, "johndoe").value("trustedusercakeys") == "/etc/ssh/ca.pub"
    trusted = [k.fingerprint for k in parse_key_file((root / "etc/ssh/ca.pub").read_text())]
    assert (OLD_CA_FINGERPRINT in trusted) is (mode == "merge")


def test_merge_with_an_unreadable_foreign_ca_file_is_an_error(tmp_path: Path) -> None:
    root = build("foreign-ca", tmp_path)
    (root / "etc/ssh/old_ca.pub").unlink()
    plan, found = plan_and_findings(root, desired_from({"foreign_ca_keys": "merge"}))
    assert plan.kept_ca_keys == ()  # the planner keeps nothing...
    finding = one(found, "FOREIGN-CA-NOT-READ")  # ...so the operator must hear about it
    assert finding.severity is Severity.ERROR and (finding.path, finding.line) == (MAIN, 3)


def test_rewriting_a_ca_file_that_holds_other_keys_names_the_keys_it_drops(tmp_path: Path) -> None:
    root = build("foreign-ca", tmp_path)
    _, found = plan_and_findings(root, desired_from({"ca_path": "/etc/ssh/old_ca.pub"}))
    dropped = one(found, "CA-KEYS-DROPPED")
    assert dropped.severity is Severity.WARNING and OLD_CA_FINGERPRINT in dropped.message
    assert not only(found, "FOREIGN-CA-KEYS")  # same file: not foreign, but its other keys are named


# ---------------------------------------------------------------- 4. foreign Match blocks


def sshd_is_legacy(version: str) -> bool:
    """OpenSSH 8.7 to 9.3: the last AuthorizedPrincipalsCommand wins (bz3574)."""
    facts = HostFacts(sshd_version_text=version)
    assert facts.sshd_version is not None, version
    return apc_last_wins(facts.sshd_version)


LEGACY_LINE = "`AuthorizedPrincipalsCommand /usr/local/bin/legacy-principals %u`"


@pytest.mark.oracle
def test_a_foreign_match_block_for_a_mapped_user(tmp_path: Path, host_keys: Path) -> None:
    root = with_keys(build("foreign-match", tmp_path), host_keys)
    version = local_sshd_version()
    desired = desired_from({"principals": [SINGLE, {"user": "ops", "any_principal": True}]})
    plan, found = plan_and_findings(root, desired, version)
    line7 = [f for f in found if (f.path, f.line) == (MAIN, 7)]
    if sshd_is_legacy(version):  # ours, read last, wins: the other team's command stops applying to johndoe
        assert [(f.code, f.severity) for f in line7] == [("SETTING-SHADOWED", Severity.WARNING)]
        assert "for logins as johndoe" in line7[0].message and "/bin/echo 'jdoe'" in line7[0].message
    else:  # the foreign block, read first, wins: ours is ignored
        assert [(f.code, f.severity) for f in line7] == [("FOREIGN-MATCH-OVERRIDES", Severity.ERROR)]
    maybe = [f for f in found if (f.path, f.line) == (MAIN, 11)]
    assert [(f.code, f.severity) for f in maybe] == [("FOREIGN-MATCH-OVERRIDES", Severity.WARNING)]
    assert "depends on Address 10.0.0.0/8" in maybe[0].message
    apply_plan_to_dir(plan, root)
    assert sshd_test(root).ok
    johndoe = sshd_effective(root, "johndoe").value("authorizedprincipalscommand")
    assert johndoe == ("/bin/echo 'jdoe'" if sshd_is_legacy(version) else "/usr/local/bin/legacy-principals %u")
    assert sshd_effective(root, "ops").value("authorizedprincipalscommand").startswith("/bin/bash -c")
    # What the warning says: from 10/8 public keys are off for the mapped users, elsewhere on.
    assert sshd_effective(root, "ops", addr="10.1.2.3").value("pubkeyauthentication") == "no"
    assert sshd_effective(root, "ops").value("pubkeyauthentication") == "yes"


def test_foreign_match_block_by_openssh_version(tmp_path: Path) -> None:
    root = build("foreign-match", tmp_path)
    desired = desired_from({"principals": [SINGLE]})
    _, modern = plan_and_findings(root, desired, "OpenSSH_9.6p1 Ubuntu-3ubuntu13.5")
    overrides = [f for f in only(modern, "FOREIGN-MATCH-OVERRIDES") if f.line == 7]
    assert len(overrides) == 1 and overrides[0].severity is Severity.ERROR
    assert LEGACY_LINE in overrides[0].message and "is read before" in overrides[0].message
    assert "first value wins" in overrides[0].message and "johndoe" in overrides[0].message
    assert not [f for f in modern if f.code == "SETTING-SHADOWED"]
    _, legacy = plan_and_findings(root, desired, "OpenSSH_9.2p1 Debian-2+deb12u3")
    assert at(legacy, MAIN, 7) == ["SETTING-SHADOWED"]
    _, before_bug = plan_and_findings(root, desired, "OpenSSH_8.4p1 Debian-5+deb11u3")  # first wins before 8.7
    assert at(before_bug, MAIN, 7) == ["FOREIGN-MATCH-OVERRIDES"]
    _, unknown = plan_and_findings(root, desired)  # offline: both outcomes, each saying when it holds
    line7 = {f.code: f.message for f in unknown if (f.path, f.line) == (MAIN, 7)}
    assert set(line7) == {"SETTING-SHADOWED", "FOREIGN-MATCH-OVERRIDES"}
    assert line7["SETTING-SHADOWED"].endswith(LEGACY_NOTE)
    assert line7["FOREIGN-MATCH-OVERRIDES"].endswith(MODERN_NOTE)
    # Findings that do not depend on the version appear once, without a note.
    warning = [f for f in unknown if (f.path, f.line) == (MAIN, 11)]
    assert len(warning) == 1 and not warning[0].message.endswith("]")


@pytest.mark.oracle
def test_allow_all_loses_to_a_later_principals_command_on_old_openssh(tmp_path: Path, host_keys: Path) -> None:
    root = with_keys(build("include-order", tmp_path), host_keys)
    version = local_sshd_version()
    plan, found = plan_and_findings(root, desired_from({"allow_all": True}), version)
    team = ("/etc/ssh/sshd_config.d/20-team-principals.conf", 2)
    codes = at(found, *team)
    apply_plan_to_dir(plan, root)
    effective = sshd_effective(root).value("authorizedprincipalscommand")
    if sshd_is_legacy(version):
        assert codes == ["MANAGED-SETTING-IGNORED"]
        assert "is read after" in next(f for f in found if (f.path, f.line) == team).message
        assert effective == "/usr/local/bin/team-principals %u"  # allow-all has no effect, as reported
    else:
        assert codes == ["SETTING-SHADOWED"]
        assert effective.startswith("/bin/bash -c")
    _, modern = plan_and_findings(root, desired_from({"allow_all": True}), "OpenSSH_9.6p1")
    assert "MANAGED-SETTING-IGNORED" not in {f.code for f in modern}


@pytest.mark.oracle
def test_an_authorized_keys_command_before_our_match_block_hides_it_on_old_openssh(
    tmp_path: Path, host_keys: Path
) -> None:
    root = with_keys(build("foreign-akc", tmp_path), host_keys)
    version = local_sshd_version()
    plan, found = plan_and_findings(root, desired_from({"principals": [SINGLE]}), version)
    apply_plan_to_dir(plan, root)
    effective = sshd_effective(root, "johndoe").value("authorizedprincipalscommand")
    hidden = [f for f in found if (f.path, f.line) == (MAIN, 7)]
    if sshd_is_legacy(version):
        assert effective == "none"  # our `Match User johndoe` command is ignored by sshd
        assert [(f.code, f.severity) for f in hidden] == [("MANAGED-SETTING-IGNORED", Severity.ERROR)]
        assert "bz3574" in hidden[0].message and "/bin/echo 'jdoe'" in hidden[0].message
    else:
        assert effective == "/bin/echo 'jdoe'" and hidden == []
    _, modern = plan_and_findings(root, desired_from({"principals": [SINGLE]}), "OpenSSH_9.6p1")
    assert not errors(modern)


@pytest.mark.oracle
def test_a_line_appended_after_a_match_block_is_conditional(tmp_path: Path, host_keys: Path) -> None:
    root = with_keys(build("cloud-init-append", tmp_path), host_keys)
    assert sshd_effective(root).value("passwordauthentication") == "yes"  # the appended `no` is not global
    finding = one(lint(root), "MATCH-SWALLOWS-DIRECTIVE")
    assert (finding.path, finding.line, finding.severity) == (MAIN, 9, Severity.WARNING)
    assert "Match Group sftponly" in finding.message
    # After the plan the file ends in `Match all`, so the next append is global; the old line stays flagged.
    plan, found = plan_and_findings(root, desired_from({"principals": [SINGLE]}))
    assert one(found, "MATCH-SWALLOWS-DIRECTIVE").line == 9
    apply_plan_to_dir(plan, root)
    with (root / "etc/ssh/sshd_config").open("a") as main:
        main.write("X11Forwarding yes\n")
    assert sshd_effective(root).value("x11forwarding") == "yes"


@pytest.mark.oracle
def test_global_only_keyword_in_a_match_block_and_other_refused_lines(tmp_path: Path, host_keys: Path) -> None:
    root = with_keys(build("global-only-in-match", tmp_path / "a"), host_keys)
    result = sshd_test(root)
    assert not result.ok and "not allowed within a Match block" in result.stderr
    finding = one(lint(root), "MATCH-GLOBAL-ONLY")
    assert (finding.path, finding.line, finding.severity) == (MAIN, 5, Severity.ERROR)

    invalid = with_keys(build("config-invalid", tmp_path / "b"), host_keys)
    assert not sshd_test(invalid).ok
    finding = one(lint(invalid), "CONFIG-INVALID")
    assert (finding.path, finding.line) == (MAIN, 2) and "Flavour" in finding.message


# ---------------------------------------------------------------- 5. users


@pytest.mark.parametrize(
    ("users", "complete", "create", "expected"),
    [
        ({"johndoe": None}, True, False, ["USER-MISSING"]),
        ({"johndoe": None}, True, True, ["USER-TO-CREATE"]),
        ({"johndoe": None}, False, False, []),
        ({"johndoe": UserInfo("johndoe", 1000, "/home/johndoe")}, True, False, []),
    ],
)
def test_mapped_user_that_does_not_exist(
    users: dict[str, UserInfo | None], complete: bool, create: bool, expected: list[str], tmp_path: Path
) -> None:
    root = build("debian", tmp_path)
    desired = desired_from({"principals": [SINGLE], "create_users": create})
    facts, plan = offline_facts(root, MAIN, desired)
    facts.users, facts.complete = users, complete
    found = find_problems(desired, facts, plan)
    assert [f.code for f in found if f.code.startswith("USER-")] == expected
    if expected == ["USER-MISSING"]:
        assert one(found, "USER-MISSING").severity is Severity.ERROR and "johndoe" in found[-1].message


# ---------------------------------------------------------------- 6. allow-all


@pytest.mark.oracle
@pytest.mark.parametrize(
    ("extra", "root_login", "says"),
    [("", "without-password", "INCLUDING root"), ("PermitRootLogin no\n", "no", "not root")],
)
def test_allow_all_is_a_prominent_security_warning(
    extra: str, root_login: str, says: str, tmp_path: Path, host_keys: Path
) -> None:
    root = with_keys(build("debian", tmp_path), host_keys)
    with (root / "etc/ssh/sshd_config").open("a") as main:
        main.write(extra)
    plan, found = plan_and_findings(root, desired_from({"allow_all": True}))
    finding = one(found, "ALLOW-ALL-MODE")
    assert finding.severity is Severity.WARNING and finding.message.startswith("SECURITY:") and says in finding.message
    apply_plan_to_dir(plan, root)
    assert sshd_effective(root, "root").value("permitrootlogin") == root_login
    assert one(lint(root), "ALLOW-ALL-MODE")  # lint recognises allow-all from the managed block alone


# ---------------------------------------------------------------- 7. versions


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (
            "OpenSSH_6.4p1 Debian-5",
            {"AuthorizedPrincipalsCommand", "AuthorizedPrincipalsCommandUser", "Include", "Match all"},
        ),
        (
            "OpenSSH_6.6.1p1 Ubuntu-2ubuntu2",
            {"AuthorizedPrincipalsCommand", "AuthorizedPrincipalsCommandUser", "Include"},
        ),
        ("OpenSSH_7.2p2 Ubuntu-4ubuntu2.10, OpenSSL 1.0.2g", {"Include"}),
        ("OpenSSH_9.2p1 Debian-2+deb12u3", set()),
        ("", set()),
    ],
)
def test_sshd_too_old_for_what_is_configured(version: str, expected: set[str], tmp_path: Path) -> None:
    root = build("debian", tmp_path)
    desired = desired_from({"principals": [SINGLE]})
    facts, plan = offline_facts(root, MAIN, desired)
    facts.sshd_version_text = version
    found = only(find_problems(desired, facts, plan), "SSHD-TOO-OLD")
    assert {f.message.split(" needs ")[0] for f in found} == expected
    assert all(f.severity is Severity.ERROR and f.line for f in found)


ED25519_CA = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPbVWIJxh+ihMDWjde3pqPjgA3gOd3iOWqQfvv08ehi1 edca"


@pytest.mark.parametrize(
    ("version", "too_old"),
    [("OpenSSH_6.4p1 Debian-5", True), ("OpenSSH_6.5p1", False), ("OpenSSH_9.2p1 Debian-2+deb12u3", False)],
)
def test_ca_key_type_the_host_cannot_read(version: str, too_old: bool, tmp_path: Path) -> None:
    # sshd -t never reads TrustedUserCAKeys: without this finding an unreadable CA key would only show as
    # every certificate login failing after the reload.
    root = build("debian", tmp_path)
    desired = desired_from({"ca_keys": [ED25519_CA], "principals": [{"user": "root", "any_principal": True}]})
    facts, plan = offline_facts(root, MAIN, desired)
    facts.sshd_version_text = version
    found = [f for f in only(find_problems(desired, facts, plan), "SSHD-TOO-OLD") if "CA key type" in f.message]
    assert bool(found) is too_old
    if too_old:
        assert "ssh-ed25519 needs OpenSSH 6.5" in found[0].message and found[0].severity is Severity.ERROR
        assert (found[0].path, found[0].line) == (MAIN, 4)  # our TrustedUserCAKeys line, as planned


# ---------------------------------------------------------------- 8. algorithm lists


PUBKEY_CASES = [
    ("ssh-ed25519,ssh-ed25519-cert-v01@openssh.com,rsa-sha2-512,rsa-sha2-512-cert-v01@openssh.com", True),
    ("-ecdsa-sha2-nistp256*", True),
    ("-ecdsa-sha2-nistp384*", False),
    ("-*-cert-v01@openssh.com", True),
    ("+ssh-rsa-cert-v01@openssh.com", False),
    ("^ssh-ed25519*", False),
    ("ssh-ed25519*,rsa-*", True),
    ("ecdsa-sha2-*", False),
    ("*", False),
]
CA_CASES = [
    ("ssh-ed25519,rsa-sha2-512", True),
    ("-ecdsa*", True),
    ("+ssh-rsa", False),
    ("^ecdsa-sha2-nistp256", False),
    ("ssh-*,ecdsa-sha2-nistp2*", False),
]
CERT_ALG, CA_ALG = "ecdsa-sha2-nistp256-cert-v01@openssh.com", "ecdsa-sha2-nistp256"


@pytest.mark.oracle
@pytest.mark.parametrize(
    ("keyword", "value", "excluded"),
    [("PubkeyAcceptedAlgorithms", v, e) for v, e in PUBKEY_CASES]
    + [("PubkeyAcceptedKeyTypes", "ssh-ed25519*", True)]
    + [("CASignatureAlgorithms", v, e) for v, e in CA_CASES],
)
def test_algorithm_lists_that_exclude_the_ca_key_agree_with_sshd(
    keyword: str, value: str, excluded: bool, tmp_path: Path, host_keys: Path
) -> None:
    root = with_keys(build("debian", tmp_path), host_keys)
    (root / "etc/ssh/sshd_config.d/50-crypto.conf").write_text(f"{keyword} {value}\n")
    printed = "casignaturealgorithms" if keyword.startswith("CA") else "pubkeyacceptedalgorithms"
    wanted = CA_ALG if keyword.startswith("CA") else CERT_ALG
    assert (wanted not in sshd_effective(root).value(printed).split(",")) is excluded
    code = "CA-ALGORITHM-EXCLUDED" if keyword.startswith("CA") else "PUBKEY-ALGORITHM-EXCLUDED"
    _, found = plan_and_findings(root, desired_from({"principals": [SINGLE]}))
    hits = only(found, code)
    assert bool(hits) is excluded
    if excluded:
        assert {(f.path, f.line, f.severity) for f in hits} == {
            ("/etc/ssh/sshd_config.d/50-crypto.conf", 1, Severity.ERROR)
        }
        assert wanted in hits[0].message


@pytest.mark.oracle
def test_a_match_block_that_narrows_algorithms_for_a_mapped_user(tmp_path: Path, host_keys: Path) -> None:
    root = with_keys(build("debian", tmp_path), host_keys)
    with (root / "etc/ssh/sshd_config").open("a") as main:
        main.write("Match User johndoe\n\tPubkeyAcceptedAlgorithms ssh-ed25519*\n")
    last_line = len((root / "etc/ssh/sshd_config").read_text().splitlines())
    assert CERT_ALG not in sshd_effective(root, "johndoe").value("pubkeyacceptedalgorithms")
    assert CERT_ALG in sshd_effective(root, "alice").value("pubkeyacceptedalgorithms")
    _, found = plan_and_findings(root, desired_from({"principals": [SINGLE, {"user": "ops", "any_principal": True}]}))
    finding = one(found, "PUBKEY-ALGORITHM-EXCLUDED")
    assert "for logins as johndoe" in finding.message and (finding.path, finding.line) == (MAIN, last_line)


@pytest.mark.oracle
def test_rhel9_crypto_policy_include_excludes_ecdsa(tmp_path: Path, host_keys: Path) -> None:
    offline = build("rhel9-crypto", tmp_path / "offline")
    found = lint(offline, desired_from({"principals": [SINGLE]}))
    policy = "/etc/crypto-policies/back-ends/opensshserver.config"
    assert {(f.code, f.path, f.line) for f in errors(found)} == {
        ("PUBKEY-ALGORITHM-EXCLUDED", policy, 4),
        ("CA-ALGORITHM-EXCLUDED", policy, 5),
    }
    # The oracle only sees /etc/ssh: the same policy file, included from there.
    root = with_keys(build("rhel9-crypto", tmp_path / "oracle"), host_keys)
    shutil.move(root / policy.lstrip("/"), root / "etc/ssh/opensshserver.config")
    redhat = root / "etc/ssh/sshd_config.d/50-redhat.conf"
    redhat.write_text(redhat.read_text().replace(policy, "/etc/ssh/opensshserver.config"))
    effective = sshd_effective(root)
    assert CERT_ALG not in effective.value("pubkeyacceptedalgorithms").split(",")
    assert CA_ALG not in effective.value("casignaturealgorithms").split(",")
    codes = {f.code for f in errors(lint(root, desired_from({"principals": [SINGLE]})))}
    assert codes == {"PUBKEY-ALGORITHM-EXCLUDED", "CA-ALGORITHM-EXCLUDED"}


def test_rhel8_crypto_policy_passed_as_sshd_options(tmp_path: Path) -> None:
    root = build("rhel8-crypto", tmp_path)
    found = errors(lint(root, desired_from({"principals": [SINGLE]})))
    assert {(f.code, f.path) for f in found} == {
        ("PUBKEY-ALGORITHM-EXCLUDED", "/etc/crypto-policies/back-ends/opensshserver.config"),
        ("CA-ALGORITHM-EXCLUDED", "/etc/crypto-policies/back-ends/opensshserver.config"),
    }
    ed25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICSnvUWjn2mOMPKUM8QH3ktL76oAVCs8kPjbpY+0EaAO ca"
    assert not errors(lint(root, desired_from({"ca_keys": [ed25519]})))  # an ed25519 CA passes this policy


# ---------------------------------------------------------------- 9. AuthenticationMethods


@pytest.mark.oracle
def test_authentication_methods_that_demand_more_than_publickey(tmp_path: Path, host_keys: Path) -> None:
    root = with_keys(build("auth-methods", tmp_path), host_keys)
    assert sshd_effective(root, "johndoe").value("authenticationmethods") == "publickey,keyboard-interactive"
    assert sshd_effective(root, "backup").value("authenticationmethods") == "password"
    desired = desired_from({"principals": [SINGLE, {"user": "backup", "principal": "backup-bot"}]})
    _, found = plan_and_findings(root, desired)
    more = one(found, "AUTH-METHODS-NEED-MORE")
    assert (more.line, more.severity) == (3, Severity.WARNING) and "keyboard-interactive" in more.message
    assert "johndoe" in more.message
    none = one(found, "AUTH-METHODS-NO-PUBLICKEY")
    assert (none.line, none.severity) == (5, Severity.ERROR) and "backup" in none.message
    (root / "etc/ssh/sshd_config").write_text("AuthenticationMethods publickey,password publickey\n")
    _, found = plan_and_findings(root, desired)
    assert not [f for f in found if f.code.startswith("AUTH-METHODS")]


# ---------------------------------------------------------------- 10. ownership and modes


def test_writable_ca_file_and_principals_directory(tmp_path: Path) -> None:
    root = build("permissions", tmp_path)
    (root / "etc/ssh/team_ca.pub").chmod(0o666)
    (root / "etc/ssh/principals").chmod(0o777)
    plain = only(lint(root), "UNSAFE-PERMISSIONS")
    assert [(f.path, f.severity) for f in plain] == [("/etc/ssh/team_ca.pub", Severity.ERROR)]
    assert "0666" in plain[0].message and "add a CA key" in plain[0].message

    desired = desired_from({"principals": [{"user": "vmuser", "principals": ["jdoe"]}], "foreign_ca_keys": "replace"})
    _, found = plan_and_findings(root, desired)
    unsafe = only(found, "UNSAFE-PERMISSIONS")
    # The planned files are written root:root 0644; the existing directory keeps its mode.
    assert [f.path for f in unsafe] == ["/etc/ssh/principals"]
    assert "sshd refuses the principals file" in unsafe[0].message and "vmuser" in unsafe[0].message
    (root / "etc/ssh/principals").chmod(0o755)
    _, found = plan_and_findings(root, desired)
    assert not only(found, "UNSAFE-PERMISSIONS")


@pytest.mark.parametrize(
    ("owner", "strict", "expected"),
    [
        ("root", "", None),
        ("johndoe", "", None),
        ("deploy", "", "sshd refuses"),
        ("deploy", "StrictModes no\n", "anyway"),
    ],
)
def test_principals_file_ownership(owner: str, strict: str, expected: str | None) -> None:
    """AuthorizedPrincipalsFile may belong to root or the target user (sshd's safe_path), nobody else."""
    facts = HostFacts(
        files={MAIN: SnapshotEntry(f"{strict}AuthorizedPrincipalsFile /etc/ssh/principals/%u\n")},
        meta={
            "/etc/ssh/principals/johndoe": FileMeta("/etc/ssh/principals/johndoe", True, owner, "root", 0o644),
            "/etc/ssh/principals": FileMeta("/etc/ssh/principals", True, "root", "root", 0o755, True),
            "/etc": FileMeta("/etc", True, "root", "root", 0o755, True),
        },
    )
    desired = desired_from({"principals": [SINGLE]})
    found = only(find_problems(desired, facts, None), "UNSAFE-PERMISSIONS")
    if expected is None:
        assert found == []
    else:
        assert [f.path for f in found] == ["/etc/ssh/principals/johndoe"] and expected in found[0].message


# ---------------------------------------------------------------- 11. openSUSE vendor file


def test_opensuse_vendor_file_without_etc_ssh_sshd_config(tmp_path: Path) -> None:
    root = build("opensuse", tmp_path)
    plain = lint(root)
    vendor = one(plain, "VENDOR-CONFIG-INCLUDED")
    assert vendor.severity is Severity.INFO and vendor.path == "/usr/etc/ssh/sshd_config"
    assert not errors(plain) and not only(plain, "MAIN-CONFIG-MISSING")
    assert one(plain, "INCLUDE-NO-MATCH").path == "/usr/etc/ssh/sshd_config"  # the vendor tree is what is linted
    plan, found = plan_and_findings(root, desired_from({"principals": [SINGLE]}))
    assert "the plan creates /etc/ssh/sshd_config" in one(found, "VENDOR-CONFIG-INCLUDED").message
    assert not errors(found)
    main = next(c for c in plan.files if c.path == MAIN)
    assert main.before is None and "Include /usr/etc/ssh/sshd_config" in main.after


def test_missing_main_file_without_a_vendor_file(tmp_path: Path) -> None:
    (tmp_path / "etc/ssh").mkdir(parents=True)
    found = lint(tmp_path)
    assert [(f.code, f.severity) for f in found] == [("MAIN-CONFIG-MISSING", Severity.ERROR)]


# ---------------------------------------------------------------- robustness


def test_a_check_that_fails_is_reported_and_the_others_still_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken(ctx: Any) -> list[Finding]:
        raise KeyError("boom")

    monkeypatch.setattr(findings_module, "CHECKS", (broken, *findings_module.CHECKS))
    found = lint(build("port-2222", tmp_path))
    internal = one(found, "INTERNAL-ERROR")
    assert internal.severity is Severity.ERROR and "broken" in internal.message and "boom" in internal.message
    assert only(found, "NO-PORT-22")


def test_findings_do_not_repeat_the_plans_own(tmp_path: Path) -> None:
    root = build("debian", tmp_path)
    (root / "etc/ssh/sshd_config").write_text("# BEGIN sshd-setup managed block: gateway CA\nUsePAM yes\n")
    desired = desired_from({})
    facts, plan = offline_facts(root, MAIN, desired)
    assert plan is not None and [f.code for f in plan.findings] == ["MANAGED-BLOCK-DAMAGED"]
    assert not [f for f in find_problems(desired, facts, plan) if f.code == "MANAGED-BLOCK-DAMAGED"]


def test_unprivileged_copies_do_not_report_their_owner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tree copied by a normal user is owned by that user: mode bits still count, the owner does not."""
    root = build("permissions", tmp_path)
    uid = os.stat(root / "etc/ssh/team_ca.pub").st_uid
    monkeypatch.setattr(os, "geteuid", lambda: uid if uid else 1000)
    facts, _ = offline_facts(root, MAIN, None)
    meta = facts.meta["/etc/ssh/team_ca.pub"]
    assert meta.exists and meta.mode == 0o644
    assert meta.owner == ("" if uid else "root")


def test_desired_main_path_is_used(tmp_path: Path) -> None:
    root = build("port-2222", tmp_path)
    shutil.move(root / "etc/ssh/sshd_config", root / "etc/ssh/sshd_config.main")
    desired = dataclasses.replace(desired_from({}), sshd_config="/etc/ssh/sshd_config.main")
    _, found = plan_and_findings(root, desired)
    assert one(found, "NO-PORT-22").path == "/etc/ssh/sshd_config.main"


# ---------------------------------------------------------------- never raise: fuzzing find_problems

LINES = [
    "Include /etc/ssh/d/*.conf",
    "Include /etc/ssh/d/0.conf /etc/ssh/d/1.conf",
    "Include d/2.conf",
    "Include /etc/ssh/sshd_config",
    "Include",
    "Match User johndoe,!ops",
    "Match Group wheel Address 10.0.0.0/8",
    "Match all",
    "Match LocalPort 22 Host *.example",
    "Match Bogus x",
    "Port 2222",
    "Port 22",
    "ListenAddress [::]:2222",
    "ListenAddress 0.0.0.0",
    "PubkeyAuthentication no",
    "TrustedUserCAKeys /etc/ssh/d/3.conf",
    "TrustedUserCAKeys /etc/ssh/ca.pub",
    "AuthorizedPrincipalsFile /etc/ssh/principals/%u /etc/ssh/d/4.conf",
    "AuthorizedPrincipalsCommand /bin/x %u",
    "AuthorizedKeysCommand /bin/keys %u",
    "AuthorizedKeysFile none",
    "PubkeyAcceptedAlgorithms -ecdsa*",
    "PubkeyAcceptedKeyTypes +ssh-dss",
    "CASignatureAlgorithms ^!bad,",
    "CASignatureAlgorithms",
    "AuthenticationMethods publickey,password keyboard-interactive:pam",
    "AuthenticationMethods",
    "StrictModes no",
    "PermitRootLogin yes",
    "Subsystem sftp internal-sftp",
    '"unterminated',
    "=value",
    "# BEGIN sshd-setup managed block: gateway CA",
    "# END sshd-setup managed block: gateway CA",
    "# BEGIN sshd-setup managed block: principal mappings",
    "X" * 5000 + " " + "y " * 2000,
]
fuzz_line = st.one_of(
    st.sampled_from(LINES),
    st.text(max_size=60),
    st.binary(max_size=60).map(lambda b: b.decode("utf-8", "surrogateescape")),
)
fuzz_text = st.lists(st.tuples(fuzz_line, st.sampled_from(["\n", "\r\n", ""])), max_size=14).map(
    lambda pairs: "".join(a + b for a, b in pairs)
)
fuzz_entry = st.one_of(fuzz_text.map(SnapshotEntry), st.just(SnapshotEntry(None, "permission denied")))
fuzz_desired = st.sampled_from(
    [
        None,
        {},
        {"allow_all": True},
        {"principals": [SINGLE], "foreign_ca_keys": "merge"},
        {**MIXED, "foreign_ca_keys": "replace", "create_users": True},
        {"principals": [{"user": "ops", "any_principal": True}], "ca_path": "/etc/ssh/d/3.conf"},
    ]
)
fuzz_meta = st.builds(
    FileMeta,
    path=st.sampled_from(["/etc/ssh", "/etc/ssh/ca.pub", "/etc/ssh/principals", "/etc/ssh/vmusers-list.txt"]),
    exists=st.booleans(),
    owner=st.sampled_from(["", "root", "johndoe", "1000"]),
    group=st.just("root"),
    mode=st.integers(min_value=0, max_value=0o7777),
    is_dir=st.booleans(),
)
fuzz_units = st.dictionaries(
    st.sampled_from(["ssh.socket", "sshd.socket", "ssh.service"]),
    st.builds(
        UnitState,
        name=st.just("ssh.socket"),
        load_state=st.sampled_from(["loaded", "not-found", "masked"]),
        active_state=st.sampled_from(["active", "inactive"]),
        unit_file_state=st.sampled_from(["enabled", "disabled", ""]),
        listen=st.lists(
            st.sampled_from(["[::]:22", "0.0.0.0:2222", "22", "/run/x.sock", "x (Datagram)", ""]), max_size=3
        ).map(tuple),
    ),
    max_size=2,
)


@settings(max_examples=250, deadline=None)
@given(
    main=fuzz_text,
    others=st.dictionaries(st.sampled_from([f"/etc/ssh/d/{n}.conf" for n in range(5)]), fuzz_entry, max_size=5),
    settings_=fuzz_desired,
    with_plan=st.booleans(),
    version=st.sampled_from(["", "OpenSSH_6.4p1", "OpenSSH_9.2p1 Debian", "OpenSSH_9.9", "garbage"]),
    users=st.dictionaries(
        st.sampled_from(["johndoe", "vmuser", "ops", "root"]),
        st.one_of(st.none(), st.just(UserInfo("x", 1000, "/home/x", ("wheel",)))),
    ),
    complete=st.booleans(),
    metas=st.lists(fuzz_meta, max_size=4),
    units=fuzz_units,
    dropins=st.dictionaries(st.just("/etc/systemd/system/ssh.socket.d/addresses.conf"), fuzz_text, max_size=1),
)
def test_find_problems_never_raises(
    main: str,
    others: dict[str, SnapshotEntry],
    settings_: dict[str, Any] | None,
    with_plan: bool,
    version: str,
    users: dict[str, UserInfo | None],
    complete: bool,
    metas: list[FileMeta],
    units: dict[str, UnitState],
    dropins: dict[str, str],
) -> None:
    files = {MAIN: SnapshotEntry(main), **others}
    facts = HostFacts(
        sshd_version_text=version,
        files=files,
        meta={m.path: m for m in metas},
        users=users,
        complete=complete,
        units=units,
        socket_dropins=dropins,
    )
    desired = desired_from(settings_) if settings_ is not None else None
    plan = None
    if with_plan and desired is not None:
        from sshd_setup.core.plan import plan_host
        from sshd_setup.templating import environment

        plan = plan_host(desired, facts.source(), environment())
    found = find_problems(desired, facts, plan)
    assert all(isinstance(f, Finding) and isinstance(f.severity, Severity) for f in found)
    assert all(f.code and f.code == f.code.upper() and " " not in f.code for f in found)
    assert "INTERNAL-ERROR" not in {f.code for f in found}, [f.message for f in found if f.code == "INTERNAL-ERROR"]


def test_deep_include_chains_loops_and_huge_lines_are_reported(tmp_path: Path) -> None:
    chain = {f"/etc/ssh/c/{n}.conf": SnapshotEntry(f"Include /etc/ssh/c/{n + 1}.conf\n") for n in range(40)}
    huge = "AuthorizedPrincipalsCommand /bin/" + "x" * 1_000_000 + "\n"
    facts = HostFacts(files={MAIN: SnapshotEntry("Include /etc/ssh/c/0.conf\n" + huge), **chain})
    found = find_problems(desired_from({"principals": [SINGLE]}), facts, None)
    assert one(found, "INCLUDE-LOOP").severity is Severity.ERROR
    assert "INTERNAL-ERROR" not in {f.code for f in found}
    assert all(len(f.message) < 2000 for f in found)  # quotes of huge lines are cut short
    loop = {
        MAIN: SnapshotEntry("Include /etc/ssh/a.conf\n"),
        "/etc/ssh/a.conf": SnapshotEntry("Include /etc/ssh/b.conf\n"),
        "/etc/ssh/b.conf": SnapshotEntry("Include /etc/ssh/a.conf\n"),
    }
    found = find_problems(None, HostFacts(files=loop), None)
    assert [(f.code, f.path) for f in found] == [("INCLUDE-LOOP", "/etc/ssh/b.conf")]


# ---------------------------------------------------------------- the remaining codes


@pytest.mark.oracle
def test_principals_that_another_setting_still_admits_are_named(tmp_path: Path, host_keys: Path) -> None:
    root = with_keys(build("include-order", tmp_path), host_keys)
    desired = desired_from({"principals": [{"user": "vmuser", "principals": ["jdoe"]}]})
    plan, found = plan_and_findings(root, desired, local_sshd_version())
    also = one(found, "PRINCIPALS-ALSO-FROM")
    assert (also.path, also.line, also.severity) == ("/etc/ssh/sshd_config.d/20-team-principals.conf", 2, Severity.INFO)
    assert "for logins as vmuser" in also.message
    apply_plan_to_dir(plan, root)
    vmuser = sshd_effective(root, "vmuser")  # both sources apply: the file from our block, the team's command
    assert vmuser.value("authorizedprincipalsfile") == "/etc/ssh/principals/vmuser"
    assert vmuser.value("authorizedprincipalscommand") == "/usr/local/bin/team-principals %u"


@pytest.mark.oracle
def test_foreign_match_blocks_that_override_allow_all_for_some_users(tmp_path: Path, host_keys: Path) -> None:
    root = with_keys(build("foreign-match", tmp_path), host_keys)
    plan, found = plan_and_findings(root, desired_from({"allow_all": True}), local_sshd_version())
    overrides = {(f.line, f.severity) for f in only(found, "FOREIGN-MATCH-OVERRIDES")}
    assert overrides == {(7, Severity.WARNING), (11, Severity.WARNING)}
    apply_plan_to_dir(plan, root)
    assert sshd_effective(root, "deploy").value("authorizedprincipalscommand") == "/usr/local/bin/legacy-principals %u"
    assert sshd_effective(root, "alice").value("authorizedprincipalscommand").startswith("/bin/bash -c")
    assert sshd_effective(root, "alice", addr="10.9.9.9").value("pubkeyauthentication") == "no"


def test_a_plan_that_sshd_would_refuse_is_an_error() -> None:
    from sshd_setup.core.plan import FileChange

    before = "UsePAM yes\n"
    facts = HostFacts(files={MAIN: SnapshotEntry(before)})
    plan = Plan(files=(FileChange(MAIN, before, before + "Match\n", "a broken plan"),))
    found = find_problems(None, facts, plan)
    assert [(f.code, f.severity) for f in found] == [("PLANNED-CONFIG-INVALID", Severity.ERROR)]
    assert "Match with no criteria" in found[0].message


@pytest.mark.parametrize(
    ("config", "ports"),
    [
        ("", {22}),
        ("Port 2222\nPort 22\n", {22, 2222}),
        ("Port 2222\nListenAddress 10.0.0.1:8022\nListenAddress 10.0.0.2\n", {8022, 2222}),
        ("ListenAddress [::1]:830\n", {830}),
        ("Match User x\n  Port 99\n", {22}),
    ],
)
def test_listen_ports_as_sshd_binds_them(config: str, ports: set[int]) -> None:
    from sshd_setup.core.findings import listen_ports
    from sshd_setup.core.tree import SnapshotSource, load_tree

    assert listen_ports(load_tree(SnapshotSource.of({MAIN: config}, {"/etc/ssh"}), MAIN)) == ports
