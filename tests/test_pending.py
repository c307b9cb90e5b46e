"""Pending state (issue 15 item 4): files on disk that the running sshd has not loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from sshd_setup.core.facts import FileMeta, HostFacts, UnitState
from sshd_setup.core.pending import PENDING_MARKER, marker_hashes, pending_findings, pending_state
from sshd_setup.core.tree import SnapshotEntry, load_tree
from tests.fleetrun import etc_ssh_state, sshd_setup, write_inventory
from tests.testhosts import HostSpec
from tests.testhosts.certs import make_ca, make_user_key, try_login

MAIN = "/etc/ssh/sshd_config"
DROPIN = "/etc/ssh/sshd_config.d/50-foreign.conf"
OURS = "# BEGIN sshd-setup managed block: gateway CA\nPubkeyAuthentication yes\n# END x\n"


def facts_at(times: dict[str, float], marker: str | None = None, pid_alive: bool = True) -> HostFacts:
    files = {MAIN: OURS + "Include /etc/ssh/sshd_config.d/*.conf\n", DROPIN: "AllowUsers root\n"}
    facts = HostFacts(os_id="debian", init="systemd", files={p: SnapshotEntry(t) for p, t in files.items()})
    facts.dirs = {"/etc/ssh", "/etc/ssh/sshd_config.d"}
    for path, mtime in times.items():
        facts.meta[path] = FileMeta(path, True, "root", "root", 0o644, path.endswith(".d"), mtime)
    facts.pid_files["/run/sshd.pid"] = pid_alive
    facts.pending_marker = marker
    return facts


def sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def test_files_newer_than_the_live_pid_file_are_pending_and_attributed() -> None:
    main_text = OURS + "Include /etc/ssh/sshd_config.d/*.conf\n"
    marker = f"backup 20261201T000000Z\n{sha(main_text)}  /etc/ssh/.sshd_config.sshd-setup-new\n"
    times = {"/run/sshd.pid": 100.0, MAIN: 150.0, DROPIN: 160.0, "/etc/ssh/sshd_config.d": 160.0}
    facts = facts_at({**times, PENDING_MARKER: 149.0}, marker)
    tree = load_tree(facts.source(), MAIN)
    pending = pending_state(facts, tree)
    assert pending.changed == (MAIN, DROPIN) and pending.ours == (MAIN,) and pending.foreign == (DROPIN,)
    assert pending.marked and pending.needs_reload
    findings = {f.code: f for f in pending_findings(facts, tree, pending)}
    assert findings["PENDING-RELOAD"].severity.value == "warning"
    foreign = findings["PENDING-FOREIGN-CHANGE"]
    assert foreign.severity.value == "error" and foreign.path == DROPIN
    assert "allowusers: (default) → root" in foreign.message  # before/after in effect
    # Loaded after every change: nothing pending. A dead pid: nobody to ask. Per-connection socket: never.
    assert not pending_state(facts_at({**times, "/run/sshd.pid": 200.0}), tree).needs_reload
    assert pending_state(facts_at(times, pid_alive=False), tree).loaded_at is None
    per_connection = facts_at(times)
    per_connection.units["ssh.socket"] = UnitState("ssh.socket", "loaded", "active", "enabled", ("[::]:22",), "yes")
    assert not pending_state(per_connection, tree).needs_reload
    assert marker_hashes(marker) == {MAIN: sha(main_text)}


def test_a_removed_dropin_shows_as_its_directory() -> None:
    times = {"/run/sshd.pid": 100.0, MAIN: 50.0, DROPIN: 50.0, "/etc/ssh/sshd_config.d": 120.0}
    facts = facts_at(times)
    pending = pending_state(facts, load_tree(facts.source(), MAIN))
    assert pending.changed == ("/etc/ssh/sshd_config.d",) and pending.foreign == pending.changed


MAPPINGS = [{"user": "johndoe", "principal": "jdoe@example.com"}]


def settings(ca_line: str) -> dict[str, object]:
    return {"ca_keys": [ca_line], "principals": MAPPINGS, "create_users": True}


@pytest.mark.integration
def test_no_reload_then_apply_reloads_and_verify_tells_the_difference(fresh_hosts, tmp_path: Path) -> None:
    fleet = fresh_hosts([HostSpec("pend1"), HostSpec("pend2", suite="trixie")])
    ca = make_ca(tmp_path)
    inventory = write_inventory(fleet, tmp_path / "inventory.yml", settings(ca.public_key))
    key = make_user_key(tmp_path / "k", "person")

    first = sshd_setup("apply", "-i", inventory, "--no-reload", "--yes", "--json")
    assert first.returncode == 0, first.stdout + first.stderr
    between = sshd_setup("verify", "-i", inventory, "--json")
    assert between.returncode == 1, between.stdout[-3000:]
    checked = sshd_setup("check", "-i", inventory, "--json")
    for host in fleet.hosts:
        assert not try_login(host, "johndoe", key, ca.sign(key, ["jdoe"], name=f"a-{host.name}")).success
        loaded = next(c for c in between.host(host.name)["checks"] if c["check"] == "running_sshd_loaded_the_files")
        assert loaded["status"] == "failed" and "/etc/ssh/sshd_config" in loaded["reason"], loaded
        codes = {f["code"]: f for f in checked.host(host.name)["findings"]}
        assert "trustedusercakeys /etc/ssh/ca.pub" in codes["PENDING-RELOAD"]["message"], codes

    second = sshd_setup("apply", "-i", inventory, "--yes", "--json")

    assert second.returncode == 0, second.stdout + second.stderr
    for host in fleet.hosts:
        result = second.host(host.name)
        assert result["status"] == "changed" and result["reloaded"], result
        assert "the running sshd had not loaded the files on disk" in result["reason"], result
        assert try_login(host, "johndoe", key, ca.sign(key, ["jdoe"], name=f"b-{host.name}")).success
    after = sshd_setup("verify", "-i", inventory, "--json")
    assert after.returncode == 0, after.stdout[-3000:]
    third = sshd_setup("apply", "-i", inventory, "--yes", "--json")
    assert all(third.host(h.name)["status"] == "unchanged" for h in fleet.hosts), third.stdout


@pytest.mark.integration
def test_a_kill_between_rename_and_reload_is_repaired_by_the_next_run(fresh_hosts, tmp_path: Path) -> None:
    fleet = fresh_hosts([HostSpec("cut1")])
    host = fleet.hosts[0]
    ca = make_ca(tmp_path)
    inventory = write_inventory(fleet, tmp_path / "inventory.yml", settings(ca.public_key))
    hups = host.sighup_count()

    cut = sshd_setup("apply", "-i", inventory, "--yes", "--json", env={"SSHD_SETUP_TEST_HOOK": "kill-after-install"})

    assert cut.returncode == 1 and cut.host("cut1")["status"] == "failed", cut.stdout
    assert "TrustedUserCAKeys /etc/ssh/ca.pub" in host.read_file("/etc/ssh/sshd_config").decode()  # renamed
    assert host.sighup_count() == hups  # and not reloaded
    repaired = sshd_setup("apply", "-i", inventory, "--yes", "--json")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    result = repaired.host("cut1")
    assert result["status"] == "changed" and "had not loaded" in result["reason"], result
    key = make_user_key(tmp_path / "k", "person")
    assert try_login(host, "johndoe", key, ca.sign(key, ["jdoe"])).success
    assert host.run(f"test -e {PENDING_MARKER}", check=False).returncode == 1


@pytest.mark.integration
def test_a_pending_foreign_change_blocks_and_is_not_activated(fresh_hosts, tmp_path: Path) -> None:
    fleet = fresh_hosts([HostSpec("alien1")])
    host = fleet.hosts[0]
    host.run("echo 'AllowUsers root' > /etc/ssh/sshd_config.d/50-foreign.conf")  # on disk, not loaded
    before = etc_ssh_state(host)
    hups = host.sighup_count()
    ca = make_ca(tmp_path)
    inventory = write_inventory(fleet, tmp_path / "inventory.yml", settings(ca.public_key))

    run = sshd_setup("apply", "-i", inventory, "--yes", "--json")

    assert run.returncode == 1
    result = run.host("alien1")
    assert result["status"] == "blocked" and "PENDING-FOREIGN-CHANGE" in result["reason"], result
    assert "allowusers: (default) → root" in result["reason"]
    assert etc_ssh_state(host) == before and host.sighup_count() == hups
