"""Benchmark (not a test): the controller CPU one SSH login costs, per SSH stack, on light hosts.

    sudo .venv/bin/python benchmarks/login_floor.py [--hosts 100] [--threads 50] [--rounds 3] [--out FILE]

Root, repository root. Boots N light hosts (tests/testhosts/light.py) and logs in to each of them, T at a
time, with nothing but the SSH stack: key exchange, host key checked against known_hosts, public-key
login as root, `exec true`, close. Each contender runs ROUNDS times; the median CPU per login is reported:
  paramiko       a paramiko Transport, as sshd-setup's own stack (Fabric 3 over paramiko) does underneath;
  asyncssh       asyncssh on one event loop (only if it is installed: `pip install asyncssh`);
  openssh        `ssh` of this machine, one process per login (its CPU is the children's rusage), with its
                 default key exchange and again with curve25519-sha256 (sntrup761 costs a lot of CPU).
This is the floor under `sshd-setup apply`'s controller CPU per host (benchmarks/scale.py): a no-op host
needs one login, a changed host two (the lockout guard proves a NEW login works), before any of our work.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.testhosts.light import LightFleet  # noqa: E402


def cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def paramiko_logins(fleet: LightFleet, threads: int) -> None:
    import paramiko

    key = paramiko.PKey.from_path(fleet.controller_key)
    known = paramiko.HostKeys(str(fleet.known_hosts_path))

    def login(address: str) -> None:
        transport = paramiko.Transport(socket.create_connection((address, 22), timeout=30))
        try:
            transport.start_client(timeout=30)
            offered = transport.get_remote_server_key()
            if not known.check(address, offered):
                raise RuntimeError(f"{address}: host key not in known_hosts")
            transport.auth_publickey("root", key)
            channel = transport.open_session()
            channel.exec_command("true")
            if channel.recv_exit_status() != 0:
                raise RuntimeError(f"{address}: true failed")
        finally:
            transport.close()

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(login, [h.address for h in fleet.hosts]))


def asyncssh_logins(fleet: LightFleet, threads: int) -> None:
    import asyncssh

    key = asyncssh.read_private_key(str(fleet.controller_key))

    async def main() -> None:
        slots = asyncio.Semaphore(threads)

        async def login(address: str) -> None:
            async with (
                slots,
                asyncssh.connect(
                    address, username="root", client_keys=[key], known_hosts=str(fleet.known_hosts_path), config=[]
                ) as connection,
            ):
                await connection.run("true", check=True)

        await asyncio.gather(*(login(h.address) for h in fleet.hosts))

    asyncio.run(main())


def openssh_logins(kex: str | None) -> Callable[[LightFleet, int], None]:
    def run(fleet: LightFleet, threads: int) -> None:
        options = ["-F", "none", "-i", str(fleet.controller_key), "-o", "BatchMode=yes"]
        options += ["-o", f"UserKnownHostsFile={fleet.known_hosts_path}", "-o", "StrictHostKeyChecking=yes"]
        if kex:
            options += ["-o", f"KexAlgorithms={kex}"]

        def login(address: str) -> None:
            subprocess.run(["ssh", *options, f"root@{address}", "true"], check=True, stdin=subprocess.DEVNULL)

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(login, [h.address for h in fleet.hosts]))

    return run


def measure(fleet: LightFleet, run: Callable[[LightFleet, int], None], threads: int) -> tuple[float, float]:
    """(CPU ms per login of this process and its children, wall seconds) for one round over the fleet."""
    before = cpu(resource.RUSAGE_SELF) + cpu(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    run(fleet, threads)
    wall = time.monotonic() - start
    spent = cpu(resource.RUSAGE_SELF) + cpu(resource.RUSAGE_CHILDREN) - before
    return 1000 * spent / len(fleet.hosts), wall


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds through the LightFleet's cleanup


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupted)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--threads", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    contenders: dict[str, Callable[[LightFleet, int], None]] = {"paramiko": paramiko_logins}
    try:
        import asyncssh  # noqa: F401

        contenders["asyncssh"] = asyncssh_logins
    except ImportError:
        print("asyncssh: not installed, skipped (pip install asyncssh)")
    contenders["openssh (default kex)"] = openssh_logins(None)
    contenders["openssh (curve25519-sha256)"] = openssh_logins("curve25519-sha256")
    results = []
    with LightFleet.up(args.hosts) as fleet:
        for name, run in contenders.items():
            rounds = [measure(fleet, run, args.threads) for _ in range(args.rounds)]
            per_login = statistics.median(ms for ms, _ in rounds)
            wall = statistics.median(w for _, w in rounds)
            spread = f"{min(ms for ms, _ in rounds):.2f}-{max(ms for ms, _ in rounds):.2f}"
            print(f"{name:28} {per_login:6.2f} ms CPU per login (rounds {spread})  wall {wall:5.2f} s", flush=True)
            results.append({"stack": name, "cpu_ms_per_login": per_login, "wall_seconds": wall, "rounds": rounds})
    if args.out:
        record = {
            "date": time.strftime("%Y-%m-%d"),
            "cpus": os.cpu_count(),
            "hosts": args.hosts,
            "threads": args.threads,
            "results": results,
        }
        args.out.write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
