"""Owner and mode of managed files converge like their content (issue 15 item 9)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sshd_setup.core.facts import FileMeta, HostFacts
from sshd_setup.core.filemodes import converge_modes
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
