"""Concurrent runs, the host lock, compare-and-swap, whole-state backups, rollback and uninstall on real
container hosts (issue 16: "Concurrent runs", "Backups and rollback that an operator can trust")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sshd_setup.remote import HOST_LOCK
from tests.fleetrun import sshd_setup, write_inventory
from tests.testhosts import Host, HostSpec
from tests.testhosts.certs import make_ca

pytestmark = [pytest.mark.integration, pytest.mark.destructive]
LOCK = HOST_LOCK.path  # the test hosts have /run

STATE = (
    "find /etc/ssh /etc/ssh/principals -maxdepth 1 -printf '%y %m %u %p\\n' 2>/dev/null | sort;"
    " find /etc/ssh -type f ! -name '*_key' -exec sha256sum {} + | sort -k2"
)


def host_state(host: Host) -> str:
    """What a rollback must put back: every name under /etc/ssh (type, mode, owner) and every file's hash."""
    return host.run(STATE).stdout


def list_settings(ca_line: str, principal: str) -> dict[str, object]:
    mapping = {"user": "vmuser", "principals": [principal], "file": "/etc/ssh/principals/vmuser"}
    return {"ca_keys": [ca_line], "principals": [mapping], "create_users": True}


def single_settings(ca_line: str, principal: str) -> dict[str, object]:
    return {"ca_keys": [ca_line], "principals": [{"user": "johndoe", "principal": principal}], "create_users": True}


def _runs(host_result: dict[str, Any]) -> list[str]:
    return [run["name"] for run in host_result.get("runs", [])]


def seen(host: Host) -> tuple[str, str, str, list[str]]:
    """ca.pub, sshd_config, the vmuser principals file and the host's backups in run order, in one login."""
    out = host.run(
        "cat /etc/ssh/ca.pub; echo @@; cat /etc/ssh/sshd_config; echo @@; cat /etc/ssh/principals/vmuser"
        " 2>/dev/null; echo @@; for c in /var/backups/sshd-setup/runs/*/complete; do"
        " read -r _ seq < $c; d=${c%/complete}; echo $seq ${d##*/}; done"
    ).stdout
    ca, config, listed, runs = out.split("@@\n")
    ordered = sorted((int(line.split()[0]), line.split()[1]) for line in runs.splitlines())
    return ca, config, listed, [name for _, name in ordered]


def test_concurrent_applies_never_leave_a_host_matching_neither_inventory(fresh_hosts, tmp_path: Path) -> None:
    fleet = fresh_hosts([HostSpec("race1"), HostSpec("race2", flavour="rhel")])
    ca_a, ca_b = make_ca(tmp_path, "ca-a"), make_ca(tmp_path, "ca-b")
    command = [sys.executable, "-m", "sshd_setup", "apply", "--yes", "--json", "-i"]
    for round_ in range(10):
        # each round both inventories differ from the host, so both runs really try to write
        a = write_inventory(fleet, tmp_path / f"a{round_}.yml", list_settings(ca_a.public_key, f"a{round_}"))
        b = write_inventory(fleet, tmp_path / f"b{round_}.yml", single_settings(ca_b.public_key, f"b{round_}"))
        procs = [subprocess.Popen([*command, str(inv)], stdout=subprocess.PIPE, text=True) for inv in (a, b)]
        reports = [json.loads(proc.communicate(timeout=300)[0]) for proc in procs]
        for host in fleet.hosts:
            ca, config, listed, runs = seen(host)
            is_a = ca_a.public_key in ca and "Match User vmuser\n" in config and listed.endswith(f"a{round_}\n")
            is_b = ca_b.public_key in ca and f"/bin/echo 'b{round_}'" in config
            assert is_a != is_b and ca.count("ssh-") == 1, (round_, host.name, reports)  # one inventory, never a mix
            winner, loser = (reports[0], reports[1]) if is_a else (reports[1], reports[0])
            won = next(h for h in winner["hosts"] if h["host"] == host.name)
            lost = next(h for h in loser["hosts"] if h["host"] == host.name)
            # the winner wrote last: its backup is the host's newest; its report says so
            assert won["status"] == "changed" and "new login verified" in won["reason"], won
            assert runs[-1] == winner["run_id"] and won["backup"] == winner["run_id"]
            if lost["status"] == "changed":  # it wrote first, then the winner replaced it (serialised)
                assert runs.index(loser["run_id"]) < runs.index(winner["run_id"]), (runs, lost)
            else:  # refused while the winner held the lock, or by compare-and-swap (or its login fell on the
                # winner's reload): wrote nothing, and says so
                assert lost["status"] in ("blocked", "unreachable"), lost
                if lost["status"] == "blocked":
                    held = f"held by run {winner['run_id']}" in lost["reason"]
                    assert held or "changed since facts were read" in lost["reason"], lost
                assert loser["run_id"] not in runs
    for host in fleet.hosts:
        assert host.run("ls -a /etc/ssh | grep -c sshd-setup-new", check=False).stdout.strip() == "0"
    listed_runs = sshd_setup("rollback", "--list", "--json", "-i", a).json
    for result in listed_runs["hosts"]:  # the default backups_keep: 5 newest + the first
        assert len(_runs(result)) == 6 and result["runs"][0]["first"], result


def test_a_held_lock_blocks_a_dead_runs_lock_is_taken_over_and_cas_writes_nothing(
    fresh_hosts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = fresh_hosts([HostSpec("lock1")])
    host = fleet.hosts[0]
    ca = make_ca(tmp_path)
    inventory = write_inventory(fleet, tmp_path / "inv.yml", single_settings(ca.public_key, "jdoe"))
    before = host_state(host)
    # another run holds the lock (its shell is alive): blocked, named, nothing written
    host.run(
        f"printf '20261201T000000Z-0ther1 999 2026-12-01T00:00:00Z\\n' > {LOCK};"
        f" (flock -o {LOCK} sleep 300 >/dev/null 2>&1 & echo $! > /run/holder.pid)"
    )
    blocked = sshd_setup("apply", "--yes", "--json", "-i", inventory).host("lock1")
    assert blocked["status"] == "blocked", blocked
    assert "held by run 20261201T000000Z-0ther1 999" in blocked["reason"]
    for command in (["check"], ["apply", "--dry-run"]):  # what the facts see: the lock, not a half-changed host
        seen_locked = sshd_setup(*command, "--json", "-i", inventory)
        held = seen_locked.host("lock1")
        assert seen_locked.returncode == 1 and held["status"] == "blocked", held
        assert held["reason"].startswith("host is locked, nothing written: held by run 20261201T000000Z-0ther1 999")
    assert host_state(host) == before
    # that run dies without releasing: its owner line stays, the kernel dropped the flock
    host.run("kill $(cat /run/holder.pid); while kill -0 $(cat /run/holder.pid) 2>/dev/null; do sleep 0.05; done")
    # ... and left what a cut run leaves: a staged file and an unfinished backup (no completion marker)
    host.run(
        "echo half > /etc/ssh/.sshd_config.sshd-setup-new.20261201T000000Z-0ther1;"
        " mkdir -p /var/backups/sshd-setup/runs/20261201T000000Z-0ther1/files"
    )
    taken = sshd_setup("apply", "--yes", "--json", "-i", inventory).host("lock1")
    assert taken["status"] == "changed", taken
    assert any("took over the lock left by run 20261201T000000Z-0ther1" in d for d in taken["details"]), taken
    assert host.read_file(LOCK) == b""  # released after the guard
    assert any("removed leftovers of a cut run" in d for d in taken["details"]), taken
    assert host.run("ls -a /etc/ssh | grep -c sshd-setup-new", check=False).stdout.strip() == "0"
    assert host.run("ls /var/backups/sshd-setup/runs").stdout.split() == [taken["backup"]]

    # compare-and-swap: a writer changes sshd_config after the facts were read, before the apply
    from sshd_setup import pipeline
    from sshd_setup.inventory import load_inventory

    changed_inventory = write_inventory(fleet, tmp_path / "inv2.yml", single_settings(ca.public_key, "bwayne"))
    real_assess = pipeline.assess

    def assess_then_interfere(entry: Any, output: str, *login: str) -> Any:  # login: the user we connect as
        assessed = real_assess(entry, output, *login)
        host.run("echo '# written by someone else' >> /etc/ssh/sshd_config")
        return assessed

    monkeypatch.setattr(pipeline, "assess", assess_then_interfere)
    middle = host_state(host)
    entry = load_inventory(changed_inventory).select(None)[0]
    result = pipeline.run_host(entry, pipeline.RunOptions())
    assert result.status.value == "blocked", result
    assert "changed since facts were read: /etc/ssh/sshd_config" in result.reason
    after = host_state(host)
    assert after != middle and "bwayne" not in host.run("cat /etc/ssh/sshd_config").stdout  # only their line
    assert host.run("ls /var/backups/sshd-setup/runs | wc -l").stdout.strip() == "1"  # no backup either


def test_rollback_to_any_run_in_any_order_and_uninstall_give_the_exact_state(fresh_hosts, tmp_path: Path) -> None:
    fleet = fresh_hosts([HostSpec("back1"), HostSpec("back2", flavour="rhel")])
    ca = make_ca(tmp_path)
    steps = [
        single_settings(ca.public_key, "jdoe"),
        list_settings(ca.public_key, "robin"),  # a principals file and its directory join the managed set
        single_settings(ca.public_key, "bwayne"),
        {**list_settings(ca.public_key, "alfred"), "backups_keep": 3},
    ]
    states: list[dict[str, str]] = []  # the state before each run
    run_ids: list[str] = []
    for index, settings in enumerate(steps):
        inventory = write_inventory(fleet, tmp_path / f"step{index}.yml", settings)
        states.append({h.name: host_state(h) for h in fleet.hosts})
        run = sshd_setup("apply", "--yes", "--json", "-i", inventory)
        assert run.returncode == 0, run.stdout + run.stderr
        run_ids.append(run.json["run_id"])
        assert all(h["backup"] == run.json["run_id"] and h["status"] == "changed" for h in run.json["hosts"])
    inventory = tmp_path / "step3.yml"
    for index, target in enumerate((2, 0, 3)):  # out of order: back, further back, forward again
        preview = sshd_setup("rollback", "--dry-run", "--to", run_ids[target], "-i", inventory)
        assert preview.returncode == 0 and "would-change" in preview.stdout, preview.stdout
        run = sshd_setup("rollback", "--yes", "--json", "--to", run_ids[target], "-i", inventory)
        assert run.returncode == 0, run.stdout + run.stderr
        for host in fleet.hosts:
            assert "proved by hash" in run.host(host.name)["reason"], run.host(host.name)
            assert host_state(host) == states[target][host.name], (target, host.name)
        if index == 0:  # keep 3 (+ the first, never pruned), by run order: the rollback's own backup pushed out run 1
            listed = sshd_setup("rollback", "--list", "--json", "-i", inventory).json
            for result in listed["hosts"]:
                assert _runs(result) == [*run_ids[0:1], *run_ids[2:4], run.json["run_id"]], result
                assert result["runs"][0]["first"] and result["runs"][-1]["kind"] == "rollback"
            unknown = sshd_setup("rollback", "--yes", "--to", run_ids[1], "-i", inventory)
            assert unknown.returncode == 2 and run_ids[0] in unknown.stderr and run_ids[3] in unknown.stderr

    # a plain rollback: the state before the latest apply; a second one changes nothing (never a toggle)
    plain = sshd_setup("rollback", "--yes", "--json", "-i", inventory)
    again = sshd_setup("rollback", "--yes", "--json", "-i", inventory)
    for host in fleet.hosts:
        assert plain.host(host.name)["backup"] == run_ids[3]
        assert again.host(host.name)["status"] == "unchanged", again.host(host.name)
        assert host_state(host) == states[3][host.name]

    # uninstall: the host as it was before sshd-setup (users kept), validated, reloaded, guarded
    gone = sshd_setup("uninstall", "--yes", "--json", "-i", inventory)
    assert gone.returncode == 0, gone.stdout + gone.stderr
    for host in fleet.hosts:
        assert "new login verified" in gone.host(host.name)["reason"]
        assert host_state(host) == states[0][host.name]
        assert host.run("getent passwd vmuser johndoe | wc -l").stdout.strip() == "2"

    # --to a run only one host has: restored there, the other host reported (not silently skipped)
    only = sshd_setup("apply", "--yes", "--json", "--limit", "back1", "-i", inventory)
    assert only.returncode == 0, only.stdout + only.stderr
    partial = sshd_setup("rollback", "--yes", "--json", "--to", only.json["run_id"], "-i", inventory)
    assert partial.returncode == 1
    assert partial.host("back1")["status"] == "changed" and host_state(fleet.host("back1")) == states[0]["back1"]
    assert partial.host("back2")["status"] == "blocked"
    assert f"no backup {only.json['run_id']} on this host" in partial.host("back2")["reason"]

    # a restore that cannot be proved says so: the first backup's copy of sshd_config went bad on disk
    back1 = fleet.host("back1")
    back1.run(f"echo '# damaged' >> /var/backups/sshd-setup/runs/{run_ids[0]}/files/etc/ssh/sshd_config")
    broken = sshd_setup("rollback", "--yes", "--json", "--to", run_ids[0], "--limit", "back1", "-i", inventory)
    assert broken.returncode == 1
    assert "restore incomplete: /etc/ssh/sshd_config" in broken.host("back1")["reason"], broken.host("back1")
