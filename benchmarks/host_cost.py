"""Benchmark (not a test): where ONE host's CPU goes, step by step, for sshd-setup and the Fabric floor.

    sudo .venv/bin/python benchmarks/host_cost.py [--runs 9] [--json]

On a machine where the controller and every host share the CPUs (benchmarks/fleet.py), a fleet run is as
fast as the hosts' work is small; this measures that work. One container host (tests/testhosts), each
step repeated --runs times, CPU of the host's whole cgroup (sshd, its children, systemd, journald) from
just before the step to 0.3 s after it; medians in milliseconds:

  key exchange       a new TCP connection, SSH banner and key exchange, then closed (no login)
  authenticate       + public-key login (sshd's PAM account and session: Debian's update-motd scripts)
  login              + a session running `exit 0` = what the lockout guard costs
  check              `sshd-setup check`: a login and the facts round trip (what a no-op apply costs)
  apply --no-reload  the first apply without the reload (facts, stage, sshd -t, backup, rename)
  apply              the first apply: reload, wait for the new sshd, then the guard's login
  floor              the Fabric floor's first apply (one login, one command: hashes, sshd -t, mv, reload)

Between runs the host is put back (sshd-setup rollback; for the floor its files are restored), outside
the measured time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paramiko

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fleet import boot, cpu_seconds, fleet_cgroup, make_ca, prepare

from sshd_setup.inventory import load_inventory
from sshd_setup.sockets import tcp_connection
from sshd_setup.transport import ConnectOptions, connect

SAVE_PRISTINE = "mkdir -p /root/pristine && cp -a /etc/ssh/sshd_config /root/pristine/"
RESTORE_PRISTINE = (
    "cp -a /root/pristine/sshd_config /etc/ssh/sshd_config && rm -f /etc/ssh/ca.pub /etc/ssh/vmusers-list.txt"
    " && systemctl reload ssh"
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=9)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="sshd-setup-host-cost-"))
    ca_key = " ".join(make_ca(work / "ca").public_key.split()[:2])
    fleet = boot(1, lambda msg: print(msg, file=sys.stderr))
    try:
        host = fleet.hosts[0]
        cgroup = fleet_cgroup(fleet)
        if cgroup is None:
            print("no cgroup v2 CPU accounting for the host here", file=sys.stderr)
            return 2
        ours = prepare("sshd-setup", fleet, work / "ours", ca_key)
        floor = prepare("floor", fleet, work / "floor", ca_key)
        entry = next(iter(load_inventory(Path(ours.argv[ours.argv.index("-i") + 1])).hosts.values()))
        host.run_nsenter(SAVE_PRISTINE)

        def cli(*words: str) -> Callable[[], None]:
            argv = [ours.argv[0], *words, *(arg for arg in ours.argv[2:] if arg != "--yes")]
            return lambda: _run(argv, ours.env, ours.cwd)

        def key_exchange() -> None:
            handshake = paramiko.Transport(tcp_connection(entry.address, entry.port or 22, 10))
            try:
                handshake.start_client(timeout=10)
            finally:
                handshake.close()

        def authenticate() -> None:
            connect(entry, ConnectOptions()).close()

        def login() -> None:
            transport = connect(entry, ConnectOptions())
            try:
                transport.probe()
            finally:
                transport.close()

        def restore_floor() -> None:
            host.run_nsenter(RESTORE_PRISTINE)

        steps: list[tuple[str, Callable[[], None], Callable[[], None]]] = [
            ("key exchange", key_exchange, lambda: None),
            ("authenticate", authenticate, lambda: None),
            ("login", login, lambda: None),
            ("check", cli("check"), lambda: None),
            ("apply --no-reload", cli("apply", "--yes", "--no-reload"), cli("rollback", "--yes", "--no-reload")),
            ("apply", cli("apply", "--yes"), cli("rollback", "--yes")),
            ("floor", lambda: _run(floor.argv, floor.env, floor.cwd), restore_floor),
        ]
        results: dict[str, dict[str, Any]] = {}
        for name, step, reset in steps:
            costs = []
            for _ in range(args.runs):
                time.sleep(0.3)
                before = cpu_seconds(cgroup)
                step()
                time.sleep(0.3)
                costs.append((cpu_seconds(cgroup) - before) * 1000)
                reset()
            results[name] = {"median_ms": round(statistics.median(costs), 1), "runs_ms": [round(c, 1) for c in costs]}
    finally:
        fleet.down()
    if args.json:
        print(json.dumps({"host_cpu": results}, indent=2))
    else:
        print(f"host CPU per step, one host, median of {args.runs} (ms):")
        for name, value in results.items():
            spread = f"{min(value['runs_ms']):.0f}-{max(value['runs_ms']):.0f}"
            print(f"  {name:<18} {value['median_ms']:6.1f}   (range {spread})")
    return 0


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> None:
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


if __name__ == "__main__":
    sys.exit(main())
