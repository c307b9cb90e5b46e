"""AllowUsers / DenyUsers / AllowGroups / DenyGroups (issue 15 item 5): pure verdicts, judged by the real sshd."""

from __future__ import annotations

from pathlib import Path

import pytest

from sshd_setup.core.access import lists_for, verdict
from sshd_setup.core.facts import HostFacts, UserInfo
from sshd_setup.core.findings import find_problems
from sshd_setup.core.openssh import ACCESS_KEYWORDS
from sshd_setup.core.tree import SnapshotEntry, SnapshotSource, load_tree
from tests.helpers import desired_from
from tests.sshd_oracle import make_host_keys, require_oracle, sshd_effective

MAIN = "/etc/ssh/sshd_config"
ROOT_GROUPS = frozenset({"root"})

CASES = {
    "none": "PasswordAuthentication no\n",
    "allow-other": "AllowUsers alice bob\n",
    "allow-two-lines": "AllowUsers alice\nAllowUsers root\n",
    "deny-root": "DenyUsers root\n",
    "deny-glob": "DenyUsers r*t nobody\n",
    "allow-groups": "AllowGroups wheel\n",
    "deny-groups": "DenyGroups root\n",
    "match-replaces": "AllowUsers alice\nMatch User root\n  AllowUsers root\n",
    "match-other": "Match User alice\n  DenyUsers root\n",
    "match-all-after": "AllowUsers root\nMatch all\n  AllowUsers alice\n",
    "user-at-host": "AllowUsers root@10.0.0.1\n",
}
# (case, user) → refused?  (root is in group root only; alice's groups unknown here)
REFUSED = {
    ("none", "root"): False,
    ("allow-other", "root"): True,
    ("allow-other", "alice"): False,
    ("allow-two-lines", "root"): False,
    ("deny-root", "root"): True,
    ("deny-glob", "root"): True,
    ("deny-glob", "alice"): False,
    ("allow-groups", "root"): True,
    ("deny-groups", "root"): True,
    ("match-replaces", "root"): False,
    ("match-replaces", "alice"): False,
    ("match-other", "root"): False,
    ("match-all-after", "root"): True,
    ("user-at-host", "root"): False,  # depends on the client: a warning, not a refusal
}


def tree_of(text: str):  # type: ignore[no-untyped-def]
    return load_tree(SnapshotSource.of({MAIN: text}, {"/etc/ssh"}), MAIN)


@pytest.mark.parametrize(("case", "user"), sorted(REFUSED))
def test_verdicts(case: str, user: str) -> None:
    found = verdict(tree_of(CASES[case]), user, ROOT_GROUPS if user == "root" else None)
    assert (found.refused_by is not None) is REFUSED[(case, user)], found
    if case == "user-at-host":
        assert found.depends and "some hosts" in found.depends[0]


def test_findings_name_the_connecting_and_the_mapped_user() -> None:
    desired = desired_from({"principals": [{"user": "johndoe", "principal": "jdoe"}]})
    facts = HostFacts(os_id="debian", init="systemd", files={MAIN: SnapshotEntry("AllowUsers johndoe\n")})
    facts.dirs = {"/etc/ssh"}
    facts.users = {"johndoe": UserInfo("johndoe", 1001, "/home/johndoe"), "root": UserInfo("root", 0, "/root")}
    facts.login_user = "root"
    codes = {f.code: f for f in find_problems(desired, facts, None)}
    assert "ACCESS-LOGIN-USER-DENIED" in codes and "ACCESS-MAPPED-USER-DENIED" not in codes
    assert "AllowUsers johndoe does not name root" in codes["ACCESS-LOGIN-USER-DENIED"].message
    facts.files[MAIN] = SnapshotEntry("DenyUsers john*\n")
    codes = {f.code: f for f in find_problems(desired, facts, None)}
    assert codes["ACCESS-MAPPED-USER-DENIED"].line == 1 and "ACCESS-LOGIN-USER-DENIED" not in codes


@pytest.mark.oracle
@pytest.mark.parametrize("case", sorted(CASES))
def test_lists_in_force_agree_with_sshd(case: str, tmp_path: Path) -> None:
    """The words we say are in force for root are the ones `sshd -T -C user=root` prints."""
    require_oracle()
    make_host_keys(tmp_path)
    (tmp_path / "etc/ssh/sshd_config").write_text(CASES[case])
    effective = sshd_effective(tmp_path, "root", addr="192.0.2.1")
    assert effective.ok, effective.stderr
    printed = effective.values()
    lists, _ = lists_for(tree_of(CASES[case]), "root", ROOT_GROUPS)
    for keyword in ACCESS_KEYWORDS:
        ours = [w for d in lists[keyword] for w in d.line.args]
        assert ours == printed.get(keyword, []), (case, keyword, printed.get(keyword))


MAPPINGS = [{"user": "johndoe", "principal": "jdoe@example.com"}]


@pytest.mark.integration
def test_access_lists_block_mapped_and_connecting_users_as_the_real_sshd_refuses(fresh_hosts, tmp_path: Path) -> None:
    from tests.fleetrun import etc_ssh_state, sshd_setup, write_inventory
    from tests.testhosts import HostSpec
    from tests.testhosts.certs import make_ca, make_user_key, try_login

    fleet = fresh_hosts([HostSpec("acl1"), HostSpec("acl2", suite="trixie")])
    mapped, connecting = fleet.host("acl1"), fleet.host("acl2")
    mapped.run("echo 'AllowUsers root' > /etc/ssh/sshd_config.d/40-allow.conf && systemctl reload ssh")
    connecting.run("echo 'AllowUsers johndoe' > /etc/ssh/sshd_config.d/40-allow.conf")  # not reloaded (yet)
    before = {h.name: etc_ssh_state(h) for h in fleet.hosts}
    ca = make_ca(tmp_path)
    settings = {"ca_keys": [ca.public_key], "principals": MAPPINGS, "create_users": True}
    inventory = write_inventory(fleet, tmp_path / "inventory.yml", settings)

    run = sshd_setup("apply", "-i", inventory, "--yes", "--json", "--allow", "PENDING-FOREIGN-CHANGE")

    assert run.returncode == 1
    for host, code in ((mapped, "ACCESS-MAPPED-USER-DENIED"), (connecting, "ACCESS-LOGIN-USER-DENIED")):
        result = run.host(host.name)
        assert result["status"] == "blocked" and code in result["reason"], result
        assert etc_ssh_state(host) == before[host.name]
    assert "AllowUsers johndoe does not name root" in run.host("acl2")["reason"]
    # The real sshd agrees: allowed through, the mapped user's certificate is refused by AllowUsers.
    forced = sshd_setup(
        "apply", "-i", inventory, "--limit", "acl1", "--yes", "--json", "--allow", "ACCESS-MAPPED-USER-DENIED"
    )
    assert forced.returncode == 0, forced.stdout + forced.stderr
    key = make_user_key(tmp_path / "k", "person")
    login = try_login(mapped, "johndoe", key, ca.sign(key, ["jdoe"]))
    assert not login.success and "not listed in AllowUsers" in login.journal, login
