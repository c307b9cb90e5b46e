"""Benchmark (not a test): how sshd-setup's cost grows with the fleet, on light hosts.

    sudo .venv/bin/python benchmarks/scale.py [--sizes 50,100,200,500] [--forks 10,50,100]
        [--pyinfra-forks 50] [--pyinfra-timeout 600] [--out FILE]

Root, repository root, the bench extra (`pip install -e '.[bench]'`). For every size and forks value it
boots that many fresh light hosts (tests/testhosts/light.py: a network namespace + this machine's sshd,
reloaded by Debian's /etc/init.d/ssh), then times `sshd-setup apply --yes --json` twice: the first apply
(CA + three mappings, validated, reloaded, guarded by a new login) and a re-run that must change nothing.
pyinfra (benchmarks/baselines/pyinfra) runs at the same sizes with --parallel from --pyinfra-forks, until
one run takes longer than --pyinfra-timeout (then the larger sizes are skipped and say so).

The controller and the hosts share this machine's CPUs, so the two costs are measured apart:
  controller: user+sys CPU and peak RSS of the contender's process (os.wait4's rusage);
  hosts: CPU of every light host's processes (their cgroup), and SSH logins counted in each sshd's log.
Every run is checked: JSON status per host, one reload per host for the first apply and none for the
re-run (sshd's log), the CA file on every host, `sshd -T -C user=...` on a sample of hosts.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from fleet import BASELINES, BIN, EXPECTED, KEYWORDS, LIST_FILE, LIST_PRINCIPALS, MAPPINGS, USERS  # noqa: E402

from tests.testhosts.certs import make_ca  # noqa: E402
from tests.testhosts.light import LightFleet  # noqa: E402

SAMPLE = 3  # hosts whose effective config is checked with sshd -T after each run


@dataclass
class Run:
    contender: str
    hosts: int
    forks: int
    phase: str  # "first" or "no-op"
    seconds: float = 0.0
    controller_cpu: float = 0.0
    controller_peak_mib: float = 0.0
    hosts_cpu: float = 0.0
    logins_per_host: float = 0.0
    connections_per_host: float | None = None
    round_trips_per_host: float | None = None
    returncode: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def controller_ms_per_host(self) -> float:
        return 1000 * self.controller_cpu / self.hosts


def timed(argv: list[str], cwd: Path, timeout: float) -> tuple[int, str, float, float, float]:
    """Run ARGV; (returncode, stdout, wall s, user+sys CPU s, peak RSS MiB) of it and its waited children."""
    out_path = Path(f"/dev/shm/sshd-setup-scale-{os.getpid()}.out")
    env = dict(os.environ, NO_COLOR="1")
    with open(out_path, "wb") as out:
        start = time.monotonic()
        proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                status = -1
                break
            time.sleep(0.02)
        wall = time.monotonic() - start
    proc.returncode = status
    text = out_path.read_text(errors="replace")
    out_path.unlink()
    code = os.waitstatus_to_exitcode(status) if status >= 0 else -1
    return code, text, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def settings(ca_key: str) -> dict[str, Any]:
    return {"ca_keys": [ca_key], "principals": MAPPINGS}


def run_sshd_setup(fleet: LightFleet, inventory: Path, forks: int, phase: str) -> Run:
    argv = [str(BIN / "sshd-setup"), "apply", "-i", str(inventory), "--forks", str(forks), "--yes", "--json"]
    run = Run("sshd-setup", len(fleet.hosts), forks, phase)
    before = snapshot(fleet)
    run.returncode, out, run.seconds, run.controller_cpu, run.controller_peak_mib = timed(argv, ROOT, 1800)
    run.hosts_cpu = fleet.cpu_seconds() - before["cpu"]
    want = "changed" if phase == "first" else "unchanged"
    try:
        hosts = json.loads(out[out.index("{") :])["hosts"]
    except (ValueError, KeyError):
        run.problems.append(f"no JSON from sshd-setup: {out[-300:]}")
        return run
    wrong = [h for h in hosts if h["status"] != want]
    if wrong:
        first = wrong[0]
        example = f"{first['host']} {first['status']}: {first['reason']}"
        run.problems.append(f"{len(wrong)} host(s) not {want}, e.g. {example}")
    run.connections_per_host = statistics.mean(h["connections"] for h in hosts)
    run.round_trips_per_host = statistics.mean(h["round_trips"] for h in hosts)
    finish(fleet, run, before)
    return run


def run_pyinfra(fleet: LightFleet, work: Path, ca_key: str, forks: int, phase: str, timeout: float) -> Run:
    data = {
        "ssh_user": "root",
        "ssh_key": str(fleet.controller_key),
        "ssh_known_hosts_file": str(fleet.known_hosts_path),
        "ssh_strict_host_key_checking": "yes",
        "ca_public_key": ca_key,
        "principal_mappings": MAPPINGS,
        "init": "sysvinit",
    }
    hosts = [(h.name, {"ssh_hostname": h.address, **data}) for h in fleet.hosts]
    (work / "inventory.py").write_text(f"hosts = {hosts!r}\n")
    deploy = BASELINES / "pyinfra" / "deploy.py"
    argv = [str(BIN / "pyinfra"), "-y", "--parallel", str(forks), "inventory.py", str(deploy)]
    run = Run("pyinfra", len(fleet.hosts), forks, phase)
    before = snapshot(fleet)
    run.returncode, out, run.seconds, run.controller_cpu, run.controller_peak_mib = timed(argv, work, timeout)
    run.hosts_cpu = fleet.cpu_seconds() - before["cpu"]
    if run.returncode != 0:
        run.problems.append(f"pyinfra exited {run.returncode}: {out[-300:]}")
    finish(fleet, run, before)
    return run


def snapshot(fleet: LightFleet) -> dict[str, Any]:
    return {
        "cpu": fleet.cpu_seconds(),
        "hups": {h.name: h.sighup_count() for h in fleet.hosts},
        "logins": {h.name: h.login_count() for h in fleet.hosts},
    }


def finish(fleet: LightFleet, run: Run, before: dict[str, Any]) -> None:
    """Logins per host, and the result checked: reloads, CA file, effective config on a sample."""
    logins = [h.login_count() - before["logins"][h.name] for h in fleet.hosts]
    run.logins_per_host = statistics.mean(logins)
    want_hups = 1 if run.phase == "first" else 0
    bad = [h.name for h in fleet.hosts if h.sighup_count() - before["hups"][h.name] != want_hups]
    if bad:
        run.problems.append(f"{len(bad)} host(s) not reloaded {want_hups} time(s), e.g. {bad[0]}")
    no_ca = [h.name for h in fleet.hosts if not h.file("/etc/ssh/ca.pub").is_file()]
    if no_ca:
        run.problems.append(f"{len(no_ca)} host(s) without /etc/ssh/ca.pub, e.g. {no_ca[0]}")
    for host in fleet.hosts[:: max(1, len(fleet.hosts) // SAMPLE)][:SAMPLE]:
        for user in USERS:
            out = host.run(f"sshd -T -C user={user},host=h,addr=192.0.2.1").stdout
            got = {k.lower(): v for k, _, v in (line.partition(" ") for line in out.splitlines())}
            for key in KEYWORDS:
                if got.get(key) != EXPECTED[user][key]:
                    run.problems.append(f"{host.name}: sshd -T for {user}: {key} is {got.get(key)!r}")
        text = host.file(LIST_FILE).read_text() if host.file(LIST_FILE).is_file() else ""
        listed = [ln.split("#", 1)[0].strip() for ln in text.splitlines()]
        listed = [p for p in listed if p]
        if sorted(listed) != sorted(LIST_PRINCIPALS):
            run.problems.append(f"{host.name}: {LIST_FILE} holds {listed}")


def measure(size: int, forks: int, contender: str, work: Path, timeout: float) -> tuple[list[Run], float]:
    boot = time.monotonic()
    with LightFleet.up(size) as fleet:
        booted = time.monotonic() - boot
        ca = make_ca(fleet.base)
        inventory = yaml.safe_load(fleet.inventory_path.read_text())
        inventory["all"]["vars"]["sshd_setup"] = settings(ca.public_key)
        path = work / "inventory.yml"
        path.write_text(yaml.safe_dump(inventory, sort_keys=False))
        runs = []
        for phase in ("first", "no-op"):
            if contender == "sshd-setup":
                runs.append(run_sshd_setup(fleet, path, forks, phase))
            else:
                runs.append(run_pyinfra(fleet, work, ca.public_key, forks, phase, timeout))
            print(line(runs[-1]), flush=True)
    return runs, booted


def line(r: Run) -> str:
    conn = f"{r.connections_per_host:.1f}" if r.connections_per_host is not None else "-"
    verdict = "ok" if not r.problems else "WRONG: " + "; ".join(r.problems[:2])
    return (
        f"{r.contender:10} {r.hosts:5} hosts forks {r.forks:3} {r.phase:5}  wall {r.seconds:7.2f} s  "
        f"controller {r.controller_cpu:6.2f} s ({r.controller_ms_per_host:5.1f} ms/host, peak "
        f"{r.controller_peak_mib:6.1f} MiB)  hosts {r.hosts_cpu:6.2f} s  logins/host {r.logins_per_host:.1f}  "
        f"connections/host {conn}  {verdict}"
    )


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds through every LightFleet's cleanup


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupted)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="50,100,200,500")
    parser.add_argument("--forks", default="10,50,100")
    parser.add_argument("--pyinfra-forks", default="50", help="comma list; empty: no pyinfra")
    parser.add_argument("--pyinfra-timeout", type=float, default=600)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    pyinfra_forks = [int(f) for f in args.pyinfra_forks.split(",") if f]
    needed = [BIN / "sshd-setup"] + ([BIN / "pyinfra"] if pyinfra_forks else [])
    missing = [str(path) for path in needed if not path.exists()]
    if missing:  # before any host boots, not after the first contender's twenty minutes
        print(f"missing: {', '.join(missing)} (pip install -e '.[bench]')", file=sys.stderr)
        return 2
    work = Path(f"/dev/shm/sshd-setup-scale-work-{os.getpid()}")
    work.mkdir()
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "sshd_setup")], check=True)
    runs: list[Run] = []
    boots: dict[int, float] = {}

    def save() -> None:  # after every size, so an interrupted run keeps what it measured
        record = {
            "date": time.strftime("%Y-%m-%d"),
            "cpus": os.cpu_count(),
            "boot_seconds": boots,
            "runs": [{**asdict(r), "controller_ms_per_host": r.controller_ms_per_host} for r in runs],
        }
        if args.out:
            args.out.write_text(json.dumps(record, indent=1) + "\n")

    try:
        for size in sizes:
            for forks in (int(f) for f in args.forks.split(",") if f):
                got, boots[size] = measure(size, forks, "sshd-setup", work, 1800)
                runs += got
                save()
        for forks in pyinfra_forks:
            for size in sizes:
                got, _ = measure(size, forks, "pyinfra", work, args.pyinfra_timeout)
                runs += got
                save()
                if any(r.seconds >= args.pyinfra_timeout for r in got):
                    print(f"pyinfra: {size} hosts took over {args.pyinfra_timeout:.0f} s; larger sizes skipped")
                    break
    finally:
        for leftover in work.iterdir():
            leftover.unlink()
        work.rmdir()
    return 1 if any(r.problems for r in runs) else 0


if __name__ == "__main__":
    raise SystemExit(main())
