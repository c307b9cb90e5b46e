"""The floor of benchmarks/fleet.py: the least work that still does the job, with Fabric, in parallel.

Per host: one SSH connection (TCP_NODELAY) and ONE command that carries the three finished files
(rendered in advance for the known starting state), compares their hashes with what is on the host,
and only when they differ stages them, checks the new sshd_config with `sshd -t -f`, renames them into
place and reloads sshd (`systemctl reload` returns once the reload is done). No facts, no planning, no
backups, no lockout guard: nothing a careful tool adds. A re-run is one round trip that changes nothing.

    python benchmarks/baselines/fabric_floor.py -i INVENTORY.yml --files DIR --forks N [--json]

DIR holds the files in their host layout (DIR/etc/ssh/sshd_config, DIR/etc/ssh/ca.pub, ...), e.g. from
`sshd-setup render --out DIR`. INVENTORY is an Ansible YAML inventory (ansible_host, ansible_user,
ansible_ssh_private_key_file, ansible_ssh_common_args -o UserKnownHostsFile=...).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import shlex
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import paramiko
import yaml
from fabric import Connection

from sshd_setup.sockets import QuickAckSocket

SSHD_CONFIG = "/etc/ssh/sshd_config"


def host_script(files: dict[str, bytes], unit: str) -> str:
    sums = "".join(f"{hashlib.sha256(data).hexdigest()}  {path}\n" for path, data in files.items())
    lines = [
        "export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "set -e",
        "umask 022",
        f"if printf %s {shlex.quote(sums)} | sha256sum -c --status 2>/dev/null; then echo UNCHANGED; exit 0; fi",
    ]
    for path, data in files.items():
        encoded = base64.encodebytes(data).decode()
        lines.append(f"base64 -d > {shlex.quote(path + '.floor-new')} <<'EOF'\n{encoded}EOF")
    lines.append(f"sshd -t -f {shlex.quote(SSHD_CONFIG + '.floor-new')}")
    lines += [f"mv -f {shlex.quote(path + '.floor-new')} {shlex.quote(path)}" for path in files]
    lines += [f"systemctl reload {shlex.quote(unit)}", "echo CHANGED"]
    return "\n".join(lines) + "\n"


def hosts_of(inventory: Path) -> list[dict[str, Any]]:
    data = yaml.safe_load(inventory.read_text())["all"]
    common = data.get("vars") or {}
    out = []
    for name, hvars in (data.get("hosts") or {}).items():
        v = {**common, **(hvars or {})}
        args = shlex.split(v.get("ansible_ssh_common_args", ""))
        known = next((a.split("=", 1)[1] for a in args if a.startswith("UserKnownHostsFile=")), None)
        out.append(
            {
                "name": name,
                "address": v.get("ansible_host", name),
                "user": v.get("ansible_user", "root"),
                "key": v.get("ansible_ssh_private_key_file"),
                "known_hosts": known,
            }
        )
    return out


def run_host(host: dict[str, Any], script: bytes) -> dict[str, Any]:
    started = time.monotonic()
    # TCP_NODELAY: without it Nagle's algorithm and delayed ACKs add ~40 ms to every SSH request/reply.
    # Quick ACKs for the same reason the other way round (sshd's answer to the first channel open would
    # wait ~45 ms): the same socket as sshd-setup's, so the two compare work, not TCP settings.
    sock = socket.create_connection((host["address"], 22), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock = QuickAckSocket(sock)
    conn = Connection(
        host["address"],
        user=host["user"],
        connect_kwargs={"key_filename": [host["key"]], "look_for_keys": False, "allow_agent": False, "sock": sock},
        connect_timeout=10,
    )
    if host["known_hosts"]:
        conn.client.load_host_keys(host["known_hosts"])
    conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        conn.open()
        channel = conn.transport.open_session()
        channel.exec_command("sh -s")
        channel.sendall(script)
        channel.shutdown_write()
        out = channel.makefile("rb").read().decode()
        err = channel.makefile_stderr("rb").read().decode()
        status = channel.recv_exit_status()
    finally:
        conn.close()
    return {
        "host": host["name"],
        "ok": status == 0,
        "result": out.strip() or f"exit {status}: {err.strip()}",
        "seconds": round(time.monotonic() - started, 3),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-i", "--inventory", type=Path, required=True)
    p.add_argument("--files", type=Path, required=True, help="directory with the finished files in host layout")
    p.add_argument("--forks", type=int, default=10)
    p.add_argument("--unit", default="ssh", help="sshd's systemd unit (ssh on Debian, sshd on RHEL)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    files = {"/" + str(f.relative_to(args.files)): f.read_bytes() for f in sorted(args.files.rglob("*")) if f.is_file()}
    if SSHD_CONFIG not in files:
        p.error(f"{args.files} has no etc/ssh/sshd_config")
    script = host_script(files, args.unit).encode()
    hosts = hosts_of(args.inventory)

    def one(host: dict[str, Any]) -> dict[str, Any]:
        try:
            return run_host(host, script)
        except Exception as exc:
            return {"host": host["name"], "ok": False, "result": f"{type(exc).__name__}: {exc}", "seconds": None}

    with ThreadPoolExecutor(max_workers=max(1, min(args.forks, len(hosts)))) as pool:
        results = list(pool.map(one, hosts))
    if args.json:
        print(json.dumps({"hosts": results}, indent=2))
    else:
        for r in results:
            print(f"{r['host']:<20} {'ok' if r['ok'] else 'FAILED':<7} {r['result']}")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
