"""Owner and mode of managed files converge like their content (issue 15 item 9)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sshd_setup.core.facts import FileMeta, HostFacts
from sshd_setup.core.filemodes import FinalMode, converge_modes, final_mode
from sshd_setup.core.findings import find_problems
from sshd_setup.core.plan import Plan, plan_host
from sshd_setup.core.tree import SnapshotEntry
from sshd_setup.templating import environment
from tests.fleetrun import sshd_setup, write_inventory
from tests.helpers import desired_from, plan_texts
from tests.testhosts import HostSpec
from tests.testhosts.certs import make_ca, make_user_key, try_login

PRINCIPALS = "/etc/ssh/principals/vmuser"


def test_drifted_mode_owner_and_directory_become_changes() -> None:
    desired = desired_from({"principals": [{"user": "vmuser", "principals": ["robin"]}]})
    first = plan_texts(desired, {"/etc/ssh/sshd_config": "Port 22\n"})
    texts = {c.path: c.after for c in first.files}
    plan = plan_texts(desired, texts, {"/etc/ssh", "/etc/ssh/principals"})
    assert plan.is_noop
    facts = HostFacts()
    facts.meta[PRINCIPALS] = FileMeta(PRINCIPALS, True, "vmuser", "root", 0o600)
    facts.meta["/etc/ssh/principals"] = FileMeta("/etc/ssh/principals", True, "root", "root", 0o700, True)
    facts.meta["/etc/ssh/ca.pub"] = FileMeta("/etc/ssh/ca.pub", True, "root", "root", 0o644)
    converged = converge_modes(plan, facts)
    (change,) = converged.changes
    assert change.path == PRINCIPALS and change.before == change.after
    assert change.meta_drift == "mode 0600 → 0644, owner vmuser:root → root:root"
    assert converged.fix_directories == ("/etc/ssh/principals",) and not converged.directories
    facts.meta[PRINCIPALS] = FileMeta(PRINCIPALS, True, "root", "root", 0o644)
    facts.meta["/etc/ssh/principals"] = FileMeta("/etc/ssh/principals", True, "root", "root", 0o755, True)
    assert converge_modes(plan, facts).is_noop


@pytest.mark.integration
def test_a_principals_file_made_0600_is_converged_and_logins_work_again(fresh_hosts, tmp_path: Path) -> None:
    fleet = fresh_hosts([HostSpec("mode1")])
    host = fleet.hosts[0]
    ca = make_ca(tmp_path)
    mapping = {"user": "vmuser", "principals": ["jdoe", "robin"]}
    settings = {"ca_keys": [ca.public_key], "principals": [mapping], "create_users": True}
    inventory = write_inventory(fleet, tmp_path / "inventory.yml", settings)
    assert sshd_setup("apply", "-i", inventory, "--yes").returncode == 0
    key = make_user_key(tmp_path / "k", "person")
    assert try_login(host, "vmuser", key, ca.sign(key, ["robin"], name="one")).success
    host.run(f"chmod 0600 {PRINCIPALS} && chmod 0700 /etc/ssh/principals")
    assert not try_login(host, "vmuser", key, ca.sign(key, ["robin"], name="two")).success  # sshd refuses it now

    run = sshd_setup("apply", "-i", inventory, "--yes", "--json")

    assert run.returncode == 0, run.stdout + run.stderr
    result = run.host("mode1")
    assert result["status"] == "changed", result
    reasons = [f["reason"] for f in result["files"] if f["changed"]]
    assert any("mode 0600 → 0644" in r for r in reasons), reasons
    assert host.run(f"stat -c '%a %U:%G' {PRINCIPALS} /etc/ssh/principals").stdout.split("\n")[:2] == [
        "644 root:root",
        "755 root:root",
    ]
    assert try_login(host, "vmuser", key, ca.sign(key, ["robin"], name="three")).success
    again = sshd_setup("apply", "-i", inventory, "--yes", "--json")
    assert again.returncode == 0 and again.host("mode1")["status"] == "unchanged", again.stdout


# final_mode(): the one decision of the owner and mode a path has after the apply (issue 21 item 6)

MAIN = "/etc/ssh/sshd_config"
CA = "/etc/ssh/ca.pub"


def _meta(path: str, owner: str, group: str, mode: int, is_dir: bool = False) -> FileMeta:
    return FileMeta(path, True, owner, group, mode, is_dir)


def _planned(files: dict[str, str], metas: list[FileMeta], dirs: set[str] | None = None) -> tuple[Plan, HostFacts]:
    desired = desired_from({"principals": [{"user": "vmuser", "principals": ["robin"]}]})
    facts = HostFacts(meta={m.path: m for m in metas})
    return converge_modes(plan_texts(desired, files, dirs), facts), facts


def test_new_files_and_directories_are_root_0644_and_0755() -> None:
    plan, facts = _planned({MAIN: "Port 22\n"}, [_meta("/etc/ssh", "root", "root", 0o755, True)])
    assert plan.directories == ("/etc/ssh/principals",)
    for path in (CA, PRINCIPALS):
        final = final_mode(path, plan, facts)
        assert final == FinalMode(0o644, "root", "root")
        assert final.for_script() == (0o644, "root", "root")
    directory = final_mode("/etc/ssh/principals", plan, facts)
    assert directory == FinalMode(0o755, "root", "root", is_dir=True) and directory.for_script() is None
    assert final_mode("/etc/ssh", plan, facts) == FinalMode(0o755, "root", "root", is_dir=True)  # as found


def test_a_foreign_mode_or_owner_of_a_managed_file_is_replaced_and_its_directory_fixed() -> None:
    desired = desired_from({"principals": [{"user": "vmuser", "principals": ["robin"]}]})
    texts = {c.path: c.after for c in plan_texts(desired, {MAIN: "Port 22\n"}).files}
    metas = [
        _meta(PRINCIPALS, "vmuser", "vmuser", 0o600),
        _meta(CA, "deploy", "deploy", 0o666),
        _meta("/etc/ssh/principals", "deploy", "root", 0o700, True),
    ]
    plan, facts = _planned(texts, metas, {"/etc/ssh", "/etc/ssh/principals"})
    assert final_mode(PRINCIPALS, plan, facts) == FinalMode(0o644, "root", "root")
    assert final_mode(CA, plan, facts) == FinalMode(0o644, "root", "root")
    assert final_mode("/etc/ssh/principals", plan, facts) == FinalMode(0o755, "root", "root", is_dir=True)
    # Without a plan (lint): what is there now.
    assert final_mode(CA, None, facts) == FinalMode(0o666, "deploy", "deploy")
    assert final_mode("/etc/ssh/missing", plan, facts) is None


def test_sshd_config_keeps_its_owner_and_mode_also_through_a_symlink() -> None:
    # facts.sh stats with -L: a symlinked sshd_config's meta is its target's, keyed by the managed path.
    main = _meta(MAIN, "root", "ssh", 0o640)
    plan, facts = _planned({MAIN: "Port 22\n"}, [main])
    facts.links[MAIN] = "/srv/config/sshd_config"
    (change,) = [c for c in plan.changes if c.path == MAIN]
    assert change.mode is None
    final = final_mode(MAIN, plan, facts)
    assert final == FinalMode(0o640, "root", "ssh") and final.for_script() == (0o640, "root", "ssh")
    facts.meta[MAIN] = _meta(MAIN, "UNKNOWN", "root", 0o600)  # an owner without a name: the script copies it
    final = final_mode(MAIN, plan, facts)
    assert final == FinalMode(0o600, "UNKNOWN", "root") and final.for_script() is None
    del facts.meta[MAIN]
    assert final_mode(MAIN, plan, facts) is None


def test_a_principals_file_to_remove_has_no_final_mode() -> None:
    desired = desired_from({"principals": [{"user": "vmuser", "principals": ["robin"]}]})
    texts = {c.path: c.after for c in plan_texts(desired, {MAIN: "Port 22\n"}).files}
    dropped = plan_texts(desired_from({}), texts, {"/etc/ssh", "/etc/ssh/principals"})
    (removal,) = [c for c in dropped.files if c.remove]
    facts = HostFacts(meta={PRINCIPALS: _meta(PRINCIPALS, "root", "root", 0o644)})
    assert removal.path == PRINCIPALS and final_mode(PRINCIPALS, dropped, facts) is None


def test_the_permission_findings_judge_the_final_mode() -> None:
    """A CA file 0666 is an error as it is, none once the plan rewrites it; a kept sshd_config stays judged."""
    desired = desired_from({"principals": [{"user": "vmuser", "principals": ["robin"]}]})
    texts = {c.path: c.after for c in plan_texts(desired, {MAIN: "Port 22\n"}).files}
    facts = HostFacts(
        files={path: SnapshotEntry(text) for path, text in texts.items()},
        dirs={"/etc/ssh", "/etc/ssh/principals"},
        meta={
            m.path: m
            for m in [
                _meta(CA, "root", "root", 0o666),
                _meta(PRINCIPALS, "root", "root", 0o644),
                _meta("/etc/ssh/principals", "root", "root", 0o755, True),
                _meta("/etc/ssh", "root", "root", 0o755, True),
                _meta("/etc", "root", "root", 0o755, True),
            ]
        },
    )
    unsafe = [f.path for f in find_problems(desired, facts, None) if f.code == "UNSAFE-PERMISSIONS"]
    assert unsafe == [CA]
    plan = converge_modes(plan_host(desired, facts.source(), environment()), facts)
    assert [c.path for c in plan.changes] == [CA]
    assert not [f for f in find_problems(desired, facts, plan) if f.code == "UNSAFE-PERMISSIONS"]
