"""Benchmark (not a test): sshd-setup against Ansible, pyinfra and a Fabric floor, on the same real hosts.

    .venv/bin/python benchmarks/fleet.py [--hosts 20] [--repeat 1] [--json] [--out FILE]

Run as root from the repository root, with the bench extra installed (`pip install -e '.[bench]'`).
For every contender and every repeat it boots N fresh container hosts (tests/testhosts: real systemd
and sshd), creates the three mapped Unix users on each (not timed, the same for everyone), then times,
with one fork per host for every contender:
  1. the first apply of the same CA + three mappings (single-name johndoe <- jdoe; list-file vmuser <-
     [jdoe, bwayne, robin] in /etc/ssh/vmusers-list.txt; all-users ops), validated, sshd reloaded;
  2. a re-run that must change nothing (and must not reload sshd).
After each run every host is checked with `sshd -T -C user=U,host=h,addr=192.0.2.1` for each mapped
user (pubkeyauthentication, trustedusercakeys, authorizedprincipals*), plus the CA and principals
files and sshd's journal (reloaded once by the apply, not by the re-run), so a fast wrong run fails.

Contenders: `sshd-setup apply`; benchmarks/baselines/ansible (playbook); benchmarks/baselines/pyinfra
(deploy); benchmarks/baselines/fabric_floor.py (the least work: one command per host, pre-rendered).
Wall times are of the whole command (interpreter start included). SSH logins per host are counted from
each host's sshd journal; command round trips per host come from sshd-setup's --json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fleetrun import write_inventory  # noqa: E402
from tests.testhosts import Fleet, Host, HostSpec  # noqa: E402
from tests.testhosts._system import cgroup_roots, remove_cgroup_tree  # noqa: E402
from tests.testhosts.certs import make_ca  # noqa: E402

BASELINES = ROOT / "benchmarks" / "baselines"
BIN = Path(sys.executable).parent
USERS = ("johndoe", "vmuser", "ops")
LIST_FILE = "/etc/ssh/vmusers-list.txt"
LIST_PRINCIPALS = ("jdoe", "bwayne", "robin")
ALL_PRINCIPALS_COMMAND = "/bin/bash -c \"echo '%t %k' | ssh-keygen -L -f - | grep -A1 Principals\""
CONTENDERS = ("sshd-setup", "ansible", "pyinfra", "floor")
LABELS = {
    "sshd-setup": "sshd-setup apply",
    "ansible": "Ansible playbook",
    "pyinfra": "pyinfra deploy",
    "floor": "Fabric floor",
}
KEYWORDS = (
    "pubkeyauthentication",
    "trustedusercakeys",
    "authorizedprincipalsfile",
    "authorizedprincipalscommand",
    "authorizedprincipalscommanduser",
)
COMMON = {"pubkeyauthentication": "yes", "trustedusercakeys": "/etc/ssh/ca.pub"}
EXPECTED = {
    "johndoe": {
        **COMMON,
        "authorizedprincipalsfile": "none",
        "authorizedprincipalscommand": "/bin/echo 'jdoe'",
        "authorizedprincipalscommanduser": "nobody",
    },
    "vmuser": {
        **COMMON,
        "authorizedprincipalsfile": LIST_FILE,
        "authorizedprincipalscommand": "none",
        "authorizedprincipalscommanduser": "none",
    },
    "ops": {
        **COMMON,
        "authorizedprincipalsfile": "none",
        "authorizedprincipalscommand": ALL_PRINCIPALS_COMMAND,
        "authorizedprincipalscommanduser": "nobody",
    },
}
MAPPINGS: list[dict[str, Any]] = [
    {"user": "johndoe", "principal": "jdoe"},
    {"user": "vmuser", "principals": list(LIST_PRINCIPALS), "file": LIST_FILE},
    {"user": "ops", "any_principal": True},
]

# One command per host, run with nsenter (not over SSH, so it neither disturbs sshd nor shows up in
# the login counts): the effective config per mapped user, the files' meaningful lines, sshd's journal.
STATE_SCRIPT = "\n".join(
    [
        *(
            f"echo '@@T {u}'; sshd -T -C user={u},host=h,addr=192.0.2.1 2>&1 | grep -iE '^({'|'.join(KEYWORDS)}) '"
            for u in USERS
        ),
        "echo '@@CA'; grep -vE '^(#|$)' /etc/ssh/ca.pub 2>/dev/null",
        f"echo '@@LIST'; grep -vE '^(#|$)' {LIST_FILE} 2>/dev/null",
        "echo \"@@HUP $(journalctl -q --no-pager -t sshd -o cat | grep -c 'Received SIGHUP')\"",
        "echo \"@@LOGINS $(journalctl -q --no-pager -t sshd -o cat | grep -c '^Accepted publickey for ')\"",
        'echo "@@ACTIVE $(systemctl is-active ssh.service)"',
    ]
)


@dataclass
class HostState:
    effective: dict[str, dict[str, str]] = field(default_factory=dict)
    ca: list[str] = field(default_factory=list)
    principals: list[str] = field(default_factory=list)
    sighups: int = 0
    logins: int = 0
    active: str = ""


def read_state(host: Host) -> HostState:
    out = host.run_nsenter(STATE_SCRIPT, check=False, timeout=60).stdout
    state = HostState()
    section, user = "", ""
    for line in out.splitlines():
        if line.startswith("@@"):
            kind, _, rest = line[2:].partition(" ")
            section = kind
            if kind == "T":
                user = rest
                state.effective[user] = {}
            elif kind == "HUP":
                state.sighups = int(rest or 0)
            elif kind == "LOGINS":
                state.logins = int(rest or 0)
            elif kind == "ACTIVE":
                state.active = rest
            continue
        if section == "T":
            key, _, value = line.partition(" ")
            state.effective[user][key.lower()] = value
        elif section == "CA":
            state.ca.append(" ".join(line.split()[:2]))
        elif section == "LIST":
            state.principals.append(line.strip())
    return state


def states(fleet: Fleet) -> dict[str, HostState]:
    with ThreadPoolExecutor(max_workers=min(16, len(fleet.hosts))) as pool:
        return dict(zip([h.name for h in fleet.hosts], pool.map(read_state, fleet.hosts), strict=True))


def check(
    before: dict[str, HostState], after: dict[str, HostState], ca_key: str, expect_reload: bool
) -> tuple[list[str], float]:
    """Problems (empty when every host is right) and the mean SSH logins per host during the run."""
    problems: list[str] = []
    logins = []
    for name, now in after.items():
        was = before[name]
        logins.append(now.logins - was.logins)
        for user in USERS:
            got = now.effective.get(user, {})
            for key, want in EXPECTED[user].items():
                if got.get(key) != want:
                    problems.append(f"{name}: sshd -T for {user}: {key} is {got.get(key)!r}, expected {want!r}")
        if now.ca != [ca_key]:
            problems.append(f"{name}: /etc/ssh/ca.pub holds {now.ca}, expected the one CA key")
        if sorted(now.principals) != sorted(LIST_PRINCIPALS):
            problems.append(f"{name}: {LIST_FILE} holds {now.principals}, expected {list(LIST_PRINCIPALS)}")
        reloads = now.sighups - was.sighups
        if expect_reload and reloads < 1:
            problems.append(f"{name}: sshd was not reloaded")
        if not expect_reload and reloads:
            problems.append(f"{name}: sshd was reloaded {reloads} time(s) by a run that should change nothing")
        if now.active != "active":
            problems.append(f"{name}: ssh.service is {now.active!r}")
    return problems, statistics.mean(logins) if logins else 0.0


# --- contenders ------------------------------------------------------------------------------------


@dataclass
class Prepared:
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    cleanup: Callable[[], None] = lambda: None


def base_env(keep_pythonpath: bool = False) -> dict[str, str]:
    env = dict(os.environ)
    if not keep_pythonpath:
        env.pop("PYTHONPATH", None)  # whatever sshd-setup needs locally is none of the baselines' business
    env["NO_COLOR"] = "1"
    return env


def prepare(name: str, fleet: Fleet, work: Path, ca_key: str) -> Prepared:
    n = str(len(fleet.hosts))
    work.mkdir(parents=True, exist_ok=True)
    settings = {"ca_keys": [ca_key], "principals": MAPPINGS}
    if name == "sshd-setup":
        inventory = write_inventory(fleet, work / "inventory.yml", settings)
        argv = [str(BIN / "sshd-setup"), "apply", "-i", str(inventory), "--forks", n, "--json", "--yes"]
        return Prepared(argv, base_env(keep_pythonpath=True), ROOT)
    if name == "ansible":
        (work / "vars.json").write_text(json.dumps({"ca_public_key": ca_key, "principal_mappings": MAPPINGS}))
        control = work / "cp"
        control.mkdir(exist_ok=True)
        env = base_env()
        env.update(
            ANSIBLE_CONFIG=str(BASELINES / "ansible" / "ansible.cfg"),
            ANSIBLE_HOME=str(work / "ansible-home"),
            ANSIBLE_SSH_CONTROL_PATH_DIR=str(control),
            ANSIBLE_NOCOLOR="1",
        )
        site = BASELINES / "ansible" / "site.yml"
        argv = [str(BIN / "ansible-playbook"), "-i", str(fleet.inventory_path), "-f", n]
        argv += ["-e", f"@{work / 'vars.json'}", str(site)]
        return Prepared(argv, env, BASELINES / "ansible", lambda: stop_control_masters(control))
    if name == "pyinfra":
        inventory = yaml.safe_load(fleet.inventory_path.read_text())["all"]
        common = inventory["vars"]
        known = common["ansible_ssh_common_args"].split("UserKnownHostsFile=", 1)[1].split()[0]
        data = {
            "ssh_user": "root",
            "ssh_key": common["ansible_ssh_private_key_file"],
            "ssh_known_hosts_file": known,
            "ssh_strict_host_key_checking": "yes",
            "ca_public_key": ca_key,
            "principal_mappings": MAPPINGS,
        }
        hosts = [(h, {"ssh_hostname": v["ansible_host"], **data}) for h, v in inventory["hosts"].items()]
        (work / "inventory.py").write_text(f"hosts = {hosts!r}\n")
        argv = [str(BIN / "pyinfra"), "-y", "--parallel", n, "inventory.py", str(BASELINES / "pyinfra" / "deploy.py")]
        return Prepared(argv, base_env(), work)
    if name == "floor":
        # The finished files, rendered by sshd-setup from the (identical) hosts' pristine /etc/ssh.
        inventory = write_inventory(fleet, work / "inventory.yml", settings)
        root = work / "root"
        shutil.copytree(fleet.hosts[0].root / "etc" / "ssh", root / "etc" / "ssh", symlinks=True)
        rendered = work / "files"
        render = [str(BIN / "sshd-setup"), "render", "-i", str(inventory), "--host", fleet.hosts[0].name]
        render += ["--root", str(root), "--out", str(rendered)]
        subprocess.run(render, check=True, capture_output=True, env=base_env(keep_pythonpath=True))
        argv = [sys.executable, str(BASELINES / "fabric_floor.py"), "-i", str(fleet.inventory_path)]
        argv += ["--files", str(rendered), "--forks", n, "--json"]
        return Prepared(argv, base_env(), ROOT)
    raise ValueError(name)


def stop_control_masters(directory: Path) -> None:
    """Ask Ansible's persistent ssh masters (ControlPersist) in DIRECTORY to exit."""
    for sock in directory.iterdir():
        subprocess.run(
            ["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "unused"], capture_output=True, check=False, timeout=10
        )


@dataclass
class Phase:
    seconds: float
    ok: bool
    logins_per_host: float
    problems: list[str]
    round_trips: list[int] | None = None
    connections: list[int] | None = None
    host_seconds_median: float | None = None
    controller_cpu: float | None = None
    hosts_cpu: float | None = None
    machine_busy_before: float | None = None
    log: str = ""


# --- CPU accounting: the contender's whole process tree and the fleet's containers, each a cgroup ---


def unified_root() -> Path | None:
    return next((r for r in cgroup_roots() if (r / "cgroup.controllers").exists()), None)


def cpu_seconds(cgroup: Path | None) -> float:
    """usage_usec of a cgroup v2 group (every process in it and below), in seconds; 0 if unknown."""
    if cgroup is None:
        return 0.0
    with contextlib.suppress(OSError, ValueError):
        for line in (cgroup / "cpu.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec":
                return int(value) / 1e6
    return 0.0


def fleet_cgroup(fleet: Fleet) -> Path | None:
    return next((p for p in fleet.cgroup_paths if (p / "cpu.stat").exists()), None)


class ContenderGroup:
    """A cgroup holding the contender's processes, daemonized ones included (Ansible's ssh masters)."""

    def __init__(self, name: str) -> None:
        root = unified_root()
        self.path = None if root is None else root / "sshd-setup-bench" / f"{os.getpid()}-{name}"
        if self.path is not None:
            try:
                self.path.mkdir(parents=True, exist_ok=True)
            except OSError:
                self.path = None

    def enter(self) -> None:  # runs in the child between fork and exec
        if self.path is not None:
            with contextlib.suppress(OSError):
                (self.path / "cgroup.procs").write_text("0")

    def remove(self) -> None:
        if self.path is None:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (self.path / "cgroup.procs").read_text().split():
            time.sleep(0.1)
        remove_cgroup_tree(self.path)
        with contextlib.suppress(OSError):
            self.path.parent.rmdir()


def machine_busy(seconds: float = 1.0) -> float:
    """Fraction of all CPUs busy (anyone's work) over SECONDS, from /proc/stat."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields[:8]) - idle, sum(fields[:8])

    busy0, total0 = sample()
    time.sleep(seconds)
    busy1, total1 = sample()
    return round((busy1 - busy0) / max(1, total1 - total0), 2)


def timed(prep: Prepared, log: Path, group: ContenderGroup) -> tuple[float, int, str]:
    started = time.perf_counter()
    proc = subprocess.run(
        prep.argv,
        cwd=prep.cwd,
        env=prep.env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=1800,
        preexec_fn=group.enter,  # only this thread runs now: no lock can be held across the fork
    )
    seconds = time.perf_counter() - started
    log.write_text(
        f"$ {' '.join(prep.argv)}\nexit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    )
    return seconds, proc.returncode, proc.stdout


def boot(n: int, log: Callable[[str], None]) -> Fleet:
    started = time.monotonic()
    fleet = Fleet.up([HostSpec(f"bench{i}") for i in range(1, n + 1)])
    try:

        def ready(host: Host) -> None:
            host.run_nsenter("systemctl is-system-running --wait >/dev/null 2>&1; true", timeout=120)
            host.run_nsenter(" && ".join(f"useradd -m {u}" for u in USERS))

        with ThreadPoolExecutor(max_workers=min(16, n)) as pool:
            list(pool.map(ready, fleet.hosts))
    except BaseException:
        fleet.down()
        raise
    log(f"  fleet {fleet.id}: {n} hosts up and ready in {time.monotonic() - started:.1f} s")
    return fleet


def run_contender(
    name: str, n: int, work: Path, ca_key: str, settle: float, log: Callable[[str], None]
) -> dict[str, Any]:
    fleet = boot(n, log)
    prep = None
    group = ContenderGroup(name)
    try:
        prep = prepare(name, fleet, work, ca_key)
        pristine = states(fleet)
        time.sleep(settle)  # let the freshly booted containers go quiet
        result: dict[str, Any] = {}
        before = pristine
        for phase, expect_reload in (("first", True), ("noop", False)):
            busy = machine_busy()
            cpu0, hosts0 = cpu_seconds(group.path), cpu_seconds(fleet_cgroup(fleet))
            seconds, rc, stdout = timed(prep, work / f"{phase}.log", group)
            cpu1, hosts1 = cpu_seconds(group.path), cpu_seconds(fleet_cgroup(fleet))
            after = states(fleet)
            problems, logins = check(before, after, ca_key, expect_reload)
            if rc != 0:
                problems.insert(0, f"exit status {rc} (see {work / f'{phase}.log'})")
                if name == "sshd-setup":
                    with contextlib.suppress(ValueError, KeyError):
                        for h in json.loads(stdout)["hosts"]:
                            if h["status"] not in ("changed", "unchanged"):
                                problems.insert(1, f"{h['host']}: {h['status']}: {h['reason']}")
            entry = Phase(round(seconds, 3), not problems, round(logins, 2), problems[:10])
            entry.controller_cpu = round(cpu1 - cpu0, 2) if group.path else None
            entry.hosts_cpu = round(hosts1 - hosts0, 2) if fleet_cgroup(fleet) else None
            entry.machine_busy_before = busy
            if name in ("sshd-setup", "floor") and rc == 0:
                hosts = json.loads(stdout)["hosts"]
                entry.host_seconds_median = round(statistics.median(h["seconds"] for h in hosts), 3)
                if name == "sshd-setup":
                    entry.round_trips = [h["round_trips"] for h in hosts]
                    entry.connections = [h["connections"] for h in hosts]
            result[phase] = asdict(entry)
            mark = "ok" if entry.ok else f"WRONG: {problems[0]}"
            per_host = f", per host {entry.host_seconds_median:.3f} s" if entry.host_seconds_median else ""
            log(
                f"  {LABELS[name]:<18} {phase:<6} {seconds:7.2f} s  {mark}  (cpu: controller {entry.controller_cpu}"
                f" s, hosts {entry.hosts_cpu} s; machine {busy:.0%} busy before{per_host})"
            )
            before = after
        return result
    finally:
        if prep is not None:
            prep.cleanup()
        group.remove()
        fleet.down()


# --- cold start, report ----------------------------------------------------------------------------


def cold_start(runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([str(BIN / "sshd-setup"), "--help"], capture_output=True, check=True, env=base_env(True))
        times.append(round(time.perf_counter() - started, 3))
    return times


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def median_of(runs: list[dict[str, Any]], phase: str) -> float | None:
    values = [r[phase]["seconds"] for r in runs if r[phase]["ok"]]
    return round(statistics.median(values), 3) if values else None


def median_value(runs: list[dict[str, Any]], phase: str, key: str) -> float | None:
    values = [r[phase][key] for r in runs if r[phase].get(key) is not None]
    return round(statistics.median(values), 2) if values else None


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    runs = report["runs"]
    table: dict[str, Any] = {}
    for name in report["contenders"]:
        mine = [r[name] for r in runs if name in r]
        table[name] = {phase: median_of(mine, phase) for phase in ("first", "noop")}
        table[name]["ok"] = all(r[p]["ok"] for r in mine for p in ("first", "noop"))
        table[name]["logins_per_host"] = {p: mine[-1][p]["logins_per_host"] for p in ("first", "noop")}
        for key in ("controller_cpu", "hosts_cpu", "machine_busy_before"):
            table[name][key] = {p: median_value(mine, p, key) for p in ("first", "noop")}
    ours = table.get("sshd-setup", {})

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 2) if a and b else None

    for row in table.values():
        row["times_sshd_setup"] = {p: ratio(row[p], ours.get(p)) for p in ("first", "noop")}
    mine = [r["sshd-setup"] for r in runs if "sshd-setup" in r]
    trips = {p: sorted({t for r in mine for t in (r[p]["round_trips"] or [])}) for p in ("first", "noop") if mine}
    conns = {p: sorted({t for r in mine for t in (r[p]["connections"] or [])}) for p in ("first", "noop") if mine}

    def at_least(row: str, phase: str, factor: float) -> bool | None:
        value = table.get(row, {}).get("times_sshd_setup", {}).get(phase)
        return None if value is None else value >= factor

    def floor_within(phase: str, factor: float) -> bool | None:
        value = table.get("floor", {}).get("times_sshd_setup", {}).get(phase)
        return None if not value else 1 / value <= factor

    targets = {
        "first apply >= 5x faster than Ansible": at_least("ansible", "first", 5),
        "first apply >= 2x faster than pyinfra": at_least("pyinfra", "first", 2),
        "no-op re-run >= 10x faster than Ansible": at_least("ansible", "noop", 10),
        "first apply within 1.5x of the Fabric floor": floor_within("first", 1.5),
        "no-op re-run within 1.5x of the Fabric floor": floor_within("noop", 1.5),
        "<= 3 round trips per host for a change": bool(trips) and max(trips["first"] or [99]) <= 3,
        "1 round trip per host for a no-op": bool(trips) and trips["noop"] == [1],
        "sshd-setup --help <= 0.3 s": report["help_seconds_median"] <= 0.3,
        "every contender's result verified": all(row["ok"] for row in table.values()),
    }
    return {"table": table, "round_trips": trips, "connections": conns, "targets": targets}


def fmt(value: float | None, suffix: str = "") -> str:
    return "-" if value is None else f"{value:.2f}{suffix}"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def print_report(report: dict[str, Any]) -> None:
    s = report["summary"]
    n = report["hosts"]
    print(f"\nFleet benchmark: {n} hosts, forks = {n} for every contender, {report['repeat']} repeat(s), median")
    print(f"machine: {report['cpus']} CPUs, load average before {report['load_before']}, after {report['load_after']}")
    head = f"{'contender':<18} {'first apply':>12} {'x sshd-setup':>13} {'no-op re-run':>13} {'x sshd-setup':>13}"
    print(head + f" {'logins/host':>12}  verified")
    for name, row in s["table"].items():
        x = row["times_sshd_setup"]
        logins = row["logins_per_host"]
        print(
            f"{LABELS[name]:<18} {fmt(row['first'], ' s'):>12} {fmt(x['first'], 'x'):>13} {fmt(row['noop'], ' s'):>13}"
            f" {fmt(x['noop'], 'x'):>13} {logins['first']:>5.1f} / {logins['noop']:<4.1f}"
            f"  {'yes' if row['ok'] else 'NO'}"
        )
    print("\nCPU seconds used (first apply / no-op), and how busy the machine was just before (anyone's work):")
    print(f"{'contender':<18} {'controller':>15} {'hosts':>15} {'machine busy':>15}")
    for name, row in s["table"].items():
        c, h, b = row["controller_cpu"], row["hosts_cpu"], row["machine_busy_before"]
        controller = f"{fmt(c['first'])} / {fmt(c['noop'])}"
        hosts = f"{fmt(h['first'])} / {fmt(h['noop'])}"
        print(f"{LABELS[name]:<18} {controller:>15} {hosts:>15} {pct(b['first']) + ' / ' + pct(b['noop']):>15}")
    if s["round_trips"]:
        print(
            f"sshd-setup per host: round trips {s['round_trips']['first']} (apply) / {s['round_trips']['noop']}"
            f" (no-op); SSH connections {s['connections']['first']} / {s['connections']['noop']}"
        )
    print(f"sshd-setup --help cold start: median {report['help_seconds_median']:.3f} s of {report['help_seconds']}")
    print("targets:")
    for name, met in s["targets"].items():
        print(f"  {'met   ' if met else ('n/a   ' if met is None else 'MISSED')} {name}")


def compile_bytecode() -> None:
    """Compile sshd-setup's modules as `pip install` of a wheel does. This checkout is an editable install,
    and with PYTHONDONTWRITEBYTECODE set (or a read-only tree) every run would compile them again (~20 ms
    of CPU per start), while the other contenders' packages were compiled by pip."""
    import compileall

    compileall.compile_dir(ROOT / "sshd_setup", quiet=1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hosts", type=int, default=20, help="hosts per fleet (default 20)")
    p.add_argument("--repeat", type=int, default=1, help="fresh fleets per contender; medians reported")
    p.add_argument("--contenders", default=",".join(CONTENDERS), help=f"comma-separated subset of {CONTENDERS}")
    p.add_argument("--help-runs", type=int, default=9, help="fresh `sshd-setup --help` processes to time")
    p.add_argument("--settle", type=float, default=3.0, help="seconds to wait after boot before timing")
    p.add_argument("--json", action="store_true", help="print the full record as JSON instead of the table")
    p.add_argument("--out", type=Path, help="also write the JSON record to this file")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, inventories)")
    args = p.parse_args(argv)
    contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    unknown = set(contenders) - set(CONTENDERS)
    if unknown:
        p.error(f"unknown contender(s): {', '.join(sorted(unknown))}")
    needed = {"ansible": "ansible-playbook", "pyinfra": "pyinfra", "sshd-setup": "sshd-setup"}
    missing = [exe for c, exe in needed.items() if c in contenders and not (BIN / exe).exists()]
    if missing:
        p.error(f"{', '.join(missing)} not in {BIN}: pip install -e '.[bench]'")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    work = Path(tempfile.mkdtemp(prefix="sshd-setup-fleet-bench-"))
    report: dict[str, Any] = {
        "hosts": args.hosts,
        "repeat": args.repeat,
        "contenders": contenders,
        "cpus": os.cpu_count(),
        "load_before": loadavg(),
        "runs": [],
    }
    try:
        compile_bytecode()
        report["help_seconds"] = cold_start(args.help_runs)
        report["help_seconds_median"] = round(statistics.median(report["help_seconds"]), 3)
        ca_key = " ".join(make_ca(work / "ca").public_key.split()[:2])
        for rep in range(args.repeat):
            order = contenders[rep % len(contenders) :] + contenders[: rep % len(contenders)]
            run: dict[str, Any] = {}
            for name in order:
                log(f"repeat {rep + 1}/{args.repeat}: {LABELS[name]} on {args.hosts} fresh hosts (load {loadavg()})")
                run[name] = run_contender(name, args.hosts, work / f"r{rep}-{name}", ca_key, args.settle, log)
            report["runs"].append(run)
        report["load_after"] = loadavg()
        report["summary"] = summarize(report)
    finally:
        if args.keep:
            log(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0 if all(report["summary"]["table"][c]["ok"] for c in contenders) else 1


if __name__ == "__main__":
    sys.exit(main())
