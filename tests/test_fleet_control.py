"""Fleet run control on real hosts: no apply without a confirmation, Ctrl-C, --serial/--max-fail, the prompt."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from sshd_setup.grouping import compress_hosts
from sshd_setup.inventory import load_inventory
from sshd_setup.pipeline import RunOptions, hold_host
from sshd_setup.report import Status
from sshd_setup.transport import ConnectOptions
from tests.fleetrun import etc_ssh_state, sshd_setup, write_inventory
from tests.testhosts import Fleet, Host, HostSpec
from tests.testhosts.certs import make_ca, make_user_key, try_login

pytestmark = [pytest.mark.integration, pytest.mark.destructive]

MAPPINGS = [{"user": "johndoe", "principal": "jdoe@example.com"}]


def _inventory(fleet: Fleet, path: Path, ca_line: str, failing: list[str] | None = None) -> Path:
    """The fleet's hosts; `failing` entries first (a closed port on a real host: refused at once)."""
    write_inventory(fleet, path, {"ca_keys": [ca_line], "principals": MAPPINGS, "create_users": True})
    data = yaml.safe_load(path.read_text())
    hosts = data["all"]["hosts"]
    bad = {name: {"ansible_host": fleet.hosts[0].address, "ansible_port": 1} for name in failing or []}
    data["all"]["hosts"] = {**bad, **hosts}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _changed_and_verified(host: Host, ca, keys: Path) -> bool:  # type: ignore[no-untyped-def]
    key = make_user_key(keys, f"k-{host.name}")
    return try_login(host, "johndoe", key, ca.sign(key, ["jdoe"], validity="+10m")).success


def _wait_for_login(host: Host, cursor: str, deadline: float) -> None:
    while "Accepted publickey" not in host.journal_since(cursor):
        assert time.monotonic() < deadline, f"nobody logged in to {host.name}"
        time.sleep(0.05)


def test_ctrl_c_finishes_the_host_in_flight_and_starts_no_other(fresh_hosts, tmp_path: Path) -> None:
    fleet = fresh_hosts([HostSpec(f"sig{n}") for n in range(1, 11)])
    ca = make_ca(tmp_path)
    inventory = _inventory(fleet, tmp_path / "inventory.yml", ca.public_key)
    before = {h.name: etc_ssh_state(h) for h in fleet.hosts}

    # No terminal and no --yes: one line, exit 2, before any host is contacted.
    refused = sshd_setup("apply", "-i", inventory)
    assert refused.returncode == 2, refused
    assert refused.stderr.strip().count("\n") == 0 and "--yes" in refused.stderr, refused.stderr
    assert "nothing done" in refused.stderr and not refused.stdout
    assert all(etc_ssh_state(h) == before[h.name] for h in fleet.hosts)

    # --forks 1: sig2's first login means sig1 is done; Ctrl-C then.
    cursor = fleet.host("sig2").journal_cursor()
    argv = [sys.executable, "-m", "sshd_setup", "apply", "--yes", "-i", str(inventory), "--forks", "1"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        _wait_for_login(fleet.host("sig2"), cursor, time.monotonic() + 120)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, out + err
    assert "interrupted: starting no more hosts" in err

    changed, untouched = [], []
    for host in fleet.hosts:
        if etc_ssh_state(host) == before[host.name]:
            untouched.append(host.name)
        else:
            assert _changed_and_verified(host, ca, tmp_path / "keys"), f"{host.name} changed but not usable"
            assert host.run(f"systemctl is-active {host.unit}").stdout.strip() == "active"
            changed.append(host.name)
    assert "sig1" in changed and len(untouched) >= 7, (changed, untouched)
    summary = out[out.index("sshd-setup apply: 10 hosts in ") :]
    assert f"{len(changed)} changed" in summary, out
    not_started = [line for line in summary.splitlines() if line.strip().startswith("not-started")]
    assert not_started, out
    # every untouched host is named as not started (sig2 may have been stopped after its assessment)
    named = " ".join(not_started)
    assert compress_hosts([h for h in untouched if h != "sig2"]).split(", ")[-1] in named, out
    assert "not started: interrupted (Ctrl-C)" in named

    # A planned host whose connection was not kept (past KEEP_OPEN) reconnects and applies its plan.
    last = fleet.host(untouched[-1])
    entry = load_inventory(inventory).hosts[last.name]
    cursor = last.journal_cursor()
    held = hold_host(entry, RunOptions(connect=ConnectOptions(host_key_checking=True)), keep_open=False)
    assert held.pending and held.transport is None and held.result.status is Status.WOULD_CHANGE
    result = held.apply()
    assert result.status is Status.CHANGED and "new login verified" in result.reason, result
    assert result.connections == 3 and _changed_and_verified(last, ca, tmp_path / "keys")
    assert last.journal_since(cursor).count("Accepted publickey for root") == 3  # plan, apply, guard


def _in_pty(argv: list[str], answer: str, timeout: float = 180) -> tuple[int, str]:
    """Run argv on a pseudo-terminal; type `answer` at the first [y/N] question."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(argv, stdin=follower, stdout=follower, stderr=follower, close_fds=True)
    os.close(follower)
    output, answered, deadline = b"", False, time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
            if not answered and b"[y/N]" in output:
                os.write(leader, answer.encode() + b"\n")
                answered = True
        elif proc.poll() is not None:
            break
    proc.wait(timeout=10)
    os.close(leader)
    return proc.returncode, output.decode(errors="replace")


def test_serial_canary_max_fail_and_the_confirmation_prompt(fresh_hosts, tmp_path: Path) -> None:
    fleet = fresh_hosts([HostSpec("can1"), HostSpec("can2", flavour="rhel"), HostSpec("can3")])
    ca = make_ca(tmp_path)
    inventory = _inventory(fleet, tmp_path / "inventory.yml", ca.public_key, failing=["bad1", "bad2"])
    before = {h.name: etc_ssh_state(h) for h in fleet.hosts}
    apply = [sys.executable, "-m", "sshd_setup", "apply", "-i", str(inventory)]

    # The first batch (bad1, bad2) fails: more than --max-fail 1, so no other batch starts.
    run = sshd_setup(*apply[3:], "--yes", "--serial", "2", "--max-fail", "1", "--json")
    assert run.returncode == 1, run
    assert {run.host(n)["status"] for n in ("bad1", "bad2")} == {"unreachable"}
    for host in fleet.hosts:
        assert run.host(host.name)["status"] == "not-started", run.host(host.name)
        assert "--max-fail" in run.host(host.name)["reason"]
        assert etc_ssh_state(host) == before[host.name]
    assert "more than --max-fail" in run.stderr or "exceed --max-fail" in run.stderr

    # On a terminal: the grouped plan, then the question; no is no.
    code, out = _in_pty(apply, "n")
    assert code == 1, out
    assert "Apply to 3 hosts? [y/N]" in out and "+TrustedUserCAKeys /etc/ssh/ca.pub" in out
    assert "same change on 2 hosts" in out or "same change on 3 hosts" in out, out
    assert "not confirmed: nothing changed" in out
    assert all(etc_ssh_state(h) == before[h.name] for h in fleet.hosts)

    # yes: the three planned hosts are applied on the connections of their plan (one login each), one
    # batch each; the plan's two failures were confirmed, so they do not count against --max-fail 0.
    cursors = {h.name: h.journal_cursor() for h in fleet.hosts}
    code, out = _in_pty([*apply, "--serial", "1", "--max-fail", "0"], "y")
    assert code == 1, out  # bad1, bad2 stay unreachable
    assert "changed" in out and "3 changed, 2 unreachable" in out, out
    for host in fleet.hosts:
        assert _changed_and_verified(host, ca, tmp_path / "keys"), host.name
        logins = host.journal_since(cursors[host.name]).count("Accepted publickey for root")
        assert logins == 2, f"{host.name}: {logins} logins (plan+apply on one, the guard's new one)"


def test_ctrl_c_during_verify_finishes_the_started_host_and_starts_no_other(fleet, tmp_path: Path) -> None:
    ca = make_ca(tmp_path)
    inventory = _inventory(fleet, tmp_path / "inventory.yml", ca.public_key)
    first, second, third = fleet.hosts
    cursor = second.journal_cursor()
    argv = [sys.executable, "-m", "sshd_setup", "verify", "-i", str(inventory), "--forks", "1", "--json"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        _wait_for_login(second, cursor, time.monotonic() + 120)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, out + err
    assert "interrupted: starting no more hosts" in err
    hosts = {h["host"]: h for h in yaml.safe_load(out)["hosts"]}
    assert hosts[third.name]["status"] == "not-started" and not hosts[third.name]["checks"]
    # the host in flight ran every check (as many as the one before it), none was cut short
    assert len(hosts[second.name]["checks"]) == len(hosts[first.name]["checks"]) > 5
    assert hosts[second.name]["status"] in ("passed", "failed")
