"""Command line for the test-host harness (run from the repository root, as root).

    python -m tests.testhosts up --hosts 3 [--suite bookworm] [--flavour rhel] [--socket] [--out DIR]
    python -m tests.testhosts up --spec deb1 --spec rhel1::rhel --spec new1:trixie --spec sock1::socket
    python -m tests.testhosts list
    python -m tests.testhosts down 3            # a fleet by id, bridge name (sst3) or workdir
    python -m tests.testhosts down --all        # every fleet whose owner is gone, plus orphans
    python -m tests.testhosts build --suite trixie   # pre-build cached base trees
    python -m tests.testhosts check             # are the prerequisites there?

`up` prints the inventory's path on stdout (details on stderr) and leaves the fleet running; the
shell that ran it is recorded as the owner, and `down --all` spares fleets whose owner still runs
(add --force to stop them too).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from tests.testhosts._paths import DEFAULT_SUITE, SUITES
from tests.testhosts._system import HarnessError, is_alive
from tests.testhosts.fleet import Fleet, HostSpec, down_all, list_fleet_states
from tests.testhosts.prereqs import missing_prerequisites
from tests.testhosts.rootfs import build_seconds, ensure_rootfs

_PREFIX = {"bookworm": "deb", "trixie": "trixie", "bullseye": "bullseye"}


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def parse_spec(text: str) -> HostSpec:
    """NAME[:SUITE[:FLAVOUR]] where FLAVOUR is 'rhel', 'socket' (socket-activated Debian, one sshd per
    connection), 'debsocket' (Debian's own ssh.socket, Accept=no, starting ssh.service) or 'rhel-socket'
    (RHEL's sshd.socket enabled, sshd.service disabled)."""
    name, suite, extra = ([*text.split(":"), "", ""])[:3]
    return HostSpec(
        name=name,
        suite=suite or DEFAULT_SUITE,
        flavour="rhel" if extra in ("rhel", "rhel-socket") else None,
        socket_activated=extra in ("socket", "debsocket", "rhel-socket"),
        socket_style="service" if extra == "debsocket" else "per-connection",
    )


def _specs(args: argparse.Namespace) -> list[HostSpec]:
    if args.spec:
        return [parse_spec(s) for s in args.spec]
    prefix = args.prefix or ("rhel" if args.flavour == "rhel" else _PREFIX[args.suite])
    return [
        HostSpec(f"{prefix}{i}", suite=args.suite, flavour=args.flavour, socket_activated=args.socket)
        for i in range(1, args.hosts + 1)
    ]


def cmd_up(args: argparse.Namespace) -> int:
    specs = _specs(args)
    started = time.monotonic()
    fleet = Fleet.up(specs, workdir=args.out)
    fleet.detach(owner_pid=os.getppid())  # protected from `down --all` while the calling shell lives
    _err(f"fleet {fleet.id}: {len(fleet.hosts)} host(s) up in {time.monotonic() - started:.1f} s on {fleet.bridge}")
    for h in fleet.hosts:
        _err(f"  {h.name:<16} {h.address:<14} {h.suite:<9} unit={h.unit}{'  socket' if h.socket_activated else ''}")
    _err(f"ssh -F {fleet.ssh_config_path} {fleet.hosts[0].name}")
    _err(f"stop with: python -m tests.testhosts down {fleet.id}")
    print(fleet.inventory_path)
    return 0


def _resolve(ref: str) -> int:
    states = list_fleet_states()
    digits = ref.removeprefix("sst").removeprefix("fleet-")
    if digits.isdigit():
        return int(digits)
    path = str(Path(ref).resolve())
    for data in states:
        if path in (data["workdir"], str(Path(data["workdir"]) / "inventory.yml")):
            return int(data["id"])
    raise HarnessError(f"no fleet matches {ref!r}; see `python -m tests.testhosts list`")


def cmd_down(args: argparse.Namespace) -> int:
    if args.all:
        kept = down_all(force=args.force, log=_err)
        return 1 if kept else 0
    if not args.fleets:
        _err("down: name fleets (id, sstK or workdir) or use --all")
        return 2
    for ref in args.fleets:
        fid = _resolve(ref)
        Fleet.load(fid).down()
        _err(f"fleet {fid}: down")
    return 0


def cmd_list(_args: argparse.Namespace) -> int:
    states = list_fleet_states()
    if not states:
        _err("no fleets")
    for d in states:
        owner = d.get("owner_pid")
        owner_text = "detached" if owner is None else f"owner {owner} ({'alive' if is_alive(owner) else 'gone'})"
        alive = sum(1 for h in d["hosts"] if h.get("pid") and is_alive(h["pid"], h.get("starttime")))
        print(f"fleet {d['id']}  bridge {d['bridge']}  hosts {alive}/{len(d['hosts'])} running  {owner_text}")
        print(f"  inventory {Path(d['workdir']) / 'inventory.yml'}")
        for h in d["hosts"]:
            print(f"  {h['name']:<16} {h['address']:<14} {h['suite']:<9} {h.get('flavour') or ''}")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    for suite in args.suite or [DEFAULT_SUITE]:
        root = ensure_rootfs(suite)
        _err(f"{suite}: {root} (built in {build_seconds(suite) or 0:.0f} s)")
    return 0


def cmd_check(_args: argparse.Namespace) -> int:
    missing = missing_prerequisites()
    for reason in missing:
        _err(f"missing: {reason}")
    if not missing:
        _err("all prerequisites present")
    return 1 if missing else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.testhosts", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="boot a fleet and leave it running; prints the inventory path")
    up.add_argument("--hosts", type=int, default=1, help="number of hosts (default 1)")
    up.add_argument("--suite", choices=sorted(SUITES), default=DEFAULT_SUITE)
    up.add_argument("--flavour", choices=["rhel"], default=None, help="dress the hosts up as RHEL")
    up.add_argument("--socket", action="store_true", help="socket-activated sshd (ssh.socket)")
    up.add_argument("--prefix", help="host name prefix (default from suite/flavour: deb1, rhel1, ...)")
    up.add_argument(
        "--spec",
        action="append",
        help="NAME[:SUITE[:rhel|socket|debsocket|rhel-socket]]; repeatable; overrides --hosts",
    )
    up.add_argument("--out", type=Path, default=None, help="directory for inventory, keys and host dirs")
    down = sub.add_parser("down", help="stop fleets and remove everything they left")
    down.add_argument("fleets", nargs="*", help="fleet id, bridge name (sstK) or workdir")
    down.add_argument("--all", action="store_true", help="every fleet whose owner is gone, plus orphans")
    down.add_argument("--force", action="store_true", help="with --all: also fleets whose owner still runs")
    sub.add_parser("list", help="show fleets")
    build = sub.add_parser("build", help="build the cached base trees")
    build.add_argument("--suite", action="append", choices=sorted(SUITES))
    sub.add_parser("check", help="report missing prerequisites")
    args = p.parse_args(argv)
    handler = {"up": cmd_up, "down": cmd_down, "list": cmd_list, "build": cmd_build, "check": cmd_check}
    try:
        return handler[args.command](args)
    except (HarnessError, ValueError) as exc:
        _err(f"testhosts: error: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
