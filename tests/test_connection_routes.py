"""Real hosts reached as Ansible reaches them: through jump hosts and proxy commands, with sudo passwords.

One fleet of three hosts: `bast` and `hop2` are jump hosts, `tgt` refuses every login from the
controller's address (`DenyUsers *@CONTROLLER`) and logs every TCP connection (`LogLevel VERBOSE`:
"Connection from ADDR port P"), so its journal shows who connected: the controller must never appear.
Its journal is read with nsenter, never over SSH. The jump hosts authenticate the controller with
~/.ssh/config (a HOME made for the test), as ssh's ProxyJump does.
Then sudo passwords full of shell syntax on `bast` (password sudo, password login) and `hop2` (NOPASSWD):
nothing of them runs, and they show up nowhere.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require_test_hosts
from tests.fleetrun import CliRun, etc_ssh_state
from tests.testhosts import Fleet, Host, HostSpec
from tests.testhosts.certs import make_ca

pytestmark = [pytest.mark.integration, pytest.mark.destructive]

TOKEN = "Zq7Kx"  # in every password below, so a leak is found by grep
HOSTILE = f"{TOKEN} x; touch /tmp/ran1 #'\"$(touch /tmp/ran2)`touch /tmp/ran3` && id > /tmp/ran4"


@dataclass
class Routes:
    fleet: Fleet
    home: Path
    ca_key: str

    @property
    def controller(self) -> str:
        return self.fleet.gateway_address

    def inventory(self, path: Path, hosts: dict[str, dict[str, Any]], **all_vars: Any) -> Path:
        base = {
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(self.fleet.controller_key),
            "sshd_setup": {"ca_keys": [self.ca_key]},
            **all_vars,
        }
        path.write_text(yaml.safe_dump({"all": {"vars": base, "hosts": hosts}}))
        return path

    def run(self, *args: str | Path, home: Path | None = None) -> CliRun:
        env = {**os.environ, "HOME": str(home or self.home)}
        proc = subprocess.run(
            [sys.executable, "-m", "sshd_setup", *map(str, args)],
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        return CliRun(proc.returncode, proc.stdout, proc.stderr)


def cursor(host: Host) -> str:
    out = host.run_nsenter("journalctl -q --no-pager -n 1 -o json").stdout.strip().splitlines()
    return str(json.loads(out[-1])["__CURSOR"])


def sshd_log(host: Host, since: str) -> str:
    cmd = f"journalctl -q --no-pager -o short-iso --after-cursor={shlex.quote(since)} -t sshd -t sshd-session"
    return host.run_nsenter(cmd).stdout


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Routes]:
    require_test_hosts()
    with Fleet.up([HostSpec("bast"), HostSpec("hop2"), HostSpec("tgt")]) as fleet:
        controller = fleet.gateway_address
        fleet.host("tgt").run_nsenter(
            f"printf 'LogLevel VERBOSE\\nDenyUsers *@{controller}\\n' >> /etc/ssh/sshd_config"
            " && sshd -t && systemctl reload ssh"
        )
        home = tmp_path_factory.mktemp("home")
        (home / ".ssh").mkdir()
        subnet = controller.rsplit(".", 1)[0]
        (home / ".ssh" / "config").write_text(
            f"Host {subnet}.*\n    IdentityFile {fleet.controller_key}\n"
            f"    UserKnownHostsFile {fleet.known_hosts_path}\n"
        )
        ca = make_ca(tmp_path_factory.mktemp("ca"))
        yield Routes(fleet, home, ca.public_key)


def target_vars(routes: Routes, args: str = "") -> dict[str, Any]:
    known = f"-o UserKnownHostsFile={routes.fleet.known_hosts_path}"
    return {"ansible_host": routes.fleet.host("tgt").address, "ansible_ssh_common_args": f"{known} {args}".strip()}


def assert_reached_only_from(routes: Routes, log: str, hop: Host) -> None:
    assert f"Accepted publickey for root from {hop.address} port" in log, log
    assert f"Connection from {hop.address} port" in log, log
    assert routes.controller not in log, log  # not one TCP connection from the controller


def test_a_direct_login_to_the_target_is_refused_and_seen(routes: Routes, tmp_path: Path) -> None:
    """The harness's premise: a direct connection shows in tgt's log with the controller's address."""
    tgt = routes.fleet.host("tgt")
    inventory = routes.inventory(tmp_path / "inv.yml", {"tgt": target_vars(routes)})
    since = cursor(tgt)
    run = routes.run("check", "-i", inventory, "--json")
    assert run.returncode == 1 and run.host("tgt")["status"] == "unreachable", run.stdout + run.stderr
    assert f"User root from {routes.controller} not allowed because listed in DenyUsers" in sshd_log(tgt, since)


def test_proxy_jump_in_ansible_ssh_common_args(routes: Routes, tmp_path: Path) -> None:
    tgt, bast = routes.fleet.host("tgt"), routes.fleet.host("bast")
    hosts = {"tgt": target_vars(routes, f"-o ProxyJump=root@{bast.address}")}
    inventory = routes.inventory(tmp_path / "inv.yml", hosts)
    since = cursor(tgt)
    run = routes.run("check", "-i", inventory, "--json")
    assert run.returncode == 0 and run.host("tgt")["status"] == "checked", run.stdout + run.stderr
    assert_reached_only_from(routes, sshd_log(tgt, since), bast)


def test_a_proxy_jump_chain_goes_in_ssh_order(routes: Routes, tmp_path: Path) -> None:
    tgt, bast, hop2 = (routes.fleet.host(n) for n in ("tgt", "bast", "hop2"))
    hosts = {"tgt": target_vars(routes, f"-J root@{bast.address},root@{hop2.address}")}
    inventory = routes.inventory(tmp_path / "inv.yml", hosts)
    since, hop2_since = cursor(tgt), cursor(hop2)
    run = routes.run("check", "-i", inventory, "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    assert_reached_only_from(routes, sshd_log(tgt, since), hop2)  # the last hop
    assert f"Accepted publickey for root from {bast.address}" in sshd_log(hop2, hop2_since)  # hop2 via bast


def test_proxy_command_quoted_with_spaces(routes: Routes, tmp_path: Path) -> None:
    tgt, hop2, fleet = routes.fleet.host("tgt"), routes.fleet.host("hop2"), routes.fleet
    proxy = (
        f"ssh -F /dev/null -i {fleet.controller_key} -o 'UserKnownHostsFile {fleet.known_hosts_path}'"
        f" -o BatchMode=yes -W %h:%p root@{hop2.address}"
    )
    hosts = {"tgt": target_vars(routes, f'-o "ProxyCommand={proxy}"')}
    inventory = routes.inventory(tmp_path / "inv.yml", hosts)
    since = cursor(tgt)
    run = routes.run("check", "-i", inventory, "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    assert_reached_only_from(routes, sshd_log(tgt, since), hop2)


def test_proxy_jump_from_an_included_ssh_config_file_means_no_early_dial(routes: Routes, tmp_path: Path) -> None:
    tgt, bast = routes.fleet.host("tgt"), routes.fleet.host("bast")
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text("Include jumps.conf\n" + (routes.home / ".ssh" / "config").read_text())
    (home / ".ssh" / "jumps.conf").write_text(f"Host {tgt.address}\n    ProxyJump root@{bast.address}\n")
    inventory = routes.inventory(tmp_path / "inv.yml", {"tgt": target_vars(routes)})
    since = cursor(tgt)
    run = routes.run("check", "-i", inventory, "--json", home=home)
    assert run.returncode == 0, run.stdout + run.stderr
    assert_reached_only_from(routes, sshd_log(tgt, since), bast)


def test_every_hop_host_key_is_checked_and_the_message_names_the_file(routes: Routes, tmp_path: Path) -> None:
    bast = routes.fleet.host("bast")
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text(
        f"Host {bast.address}\n    IdentityFile {routes.fleet.controller_key}\n    UserKnownHostsFile {empty}\n"
    )
    hosts = {"tgt": target_vars(routes, f"-o ProxyJump=root@{bast.address}")}
    inventory = routes.inventory(tmp_path / "inv.yml", hosts)
    run = routes.run("check", "-i", inventory, "--json", home=home)
    assert run.returncode == 1, run.stdout + run.stderr
    reason = run.host("tgt")["reason"]
    assert f"via jump host root@{bast.address}: host key of {bast.address} is not in {empty}" in reason, reason
    assert "--no-host-key-checking" in reason
    relaxed = routes.run("check", "-i", inventory, "--json", "--no-host-key-checking", home=home)
    assert relaxed.returncode == 0, relaxed.stdout + relaxed.stderr


def test_apply_and_verify_through_the_jump_host(
    routes: Routes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sshd_setup.inventory import load_inventory
    from sshd_setup.verification.target import VerifyHost

    tgt, bast = routes.fleet.host("tgt"), routes.fleet.host("bast")
    hosts = {"tgt": target_vars(routes, f"-o ProxyJump=root@{bast.address}")}
    inventory = routes.inventory(tmp_path / "inv.yml", hosts)
    since = cursor(tgt)
    run = routes.run("apply", "-i", inventory, "--yes", "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.host("tgt")["status"] == "changed" and "new login verified" in run.host("tgt")["reason"]
    verified = routes.run("verify", "-i", inventory, "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # verify asks `sshd -T -C addr=...` about the address sshd sees: the jump host's, not ours
    monkeypatch.setenv("HOME", str(routes.home))
    target = VerifyHost(load_inventory(inventory).hosts["tgt"])
    target.connect()
    try:
        assert target.client_address == (bast.address, tgt.address)
    finally:
        target.close()
    log = sshd_log(tgt, since)
    assert_reached_only_from(routes, log, bast)
    assert log.count(f"Accepted publickey for root from {bast.address}") >= 4  # apply, guard, verify, here


# ---------------------------------------------------------------- sudo passwords that must never run


@pytest.fixture(scope="module")
def become_hosts(routes: Routes) -> Routes:
    """bast: `deploy` logs in by password only and sudo asks it; hop2: `nopw` has NOPASSWD sudo."""
    with_password = f"printf '%s\\n' {shlex.quote('deploy:' + HOSTILE)} | chpasswd"
    routes.fleet.host("bast").run(
        "useradd -m -s /bin/sh deploy && echo 'deploy ALL=(ALL) ALL' > /etc/sudoers.d/deploy"
        f" && chmod 440 /etc/sudoers.d/deploy && {with_password}"
    )
    routes.fleet.host("hop2").run(
        "useradd -m -s /bin/sh nopw && install -d -o nopw -m 700 /home/nopw/.ssh"
        " && install -o nopw -m 600 /root/.ssh/authorized_keys /home/nopw/.ssh/authorized_keys"
        " && echo 'nopw ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/nopw && chmod 440 /etc/sudoers.d/nopw"
    )
    return routes


def become_inventory(routes: Routes, path: Path, password: str) -> Path:
    known = f"-o UserKnownHostsFile={routes.fleet.known_hosts_path}"
    hosts = {
        "bast": {
            "ansible_host": routes.fleet.host("bast").address,
            "ansible_user": "deploy",
            "ansible_ssh_private_key_file": None,
            "ansible_password": HOSTILE,
        },
        "hop2": {"ansible_host": routes.fleet.host("hop2").address, "ansible_user": "nopw"},
    }
    return routes.inventory(
        path, hosts, ansible_become=True, ansible_become_password=password, ansible_ssh_common_args=known
    )


def nothing_ran(host: Host) -> None:
    assert host.run("ls /tmp/ran* 2>/dev/null || true").stdout == "", f"{host.name}: the password was executed"


def traces(host: Host) -> str:
    """Where the password could have been left on the host: files and the whole journal."""
    files = host.run(
        f"grep -rlF {TOKEN} /etc /tmp /var/log /var/backups /root /home /run 2>/dev/null || true", timeout=120
    ).stdout
    journal = host.run(f"journalctl -q --no-pager -o cat | grep -F {TOKEN} || true").stdout
    return files + journal


class ProcessWatch:
    """Samples every process's command line, here and on the hosts (nsenter, no SSH), while a run goes on.

    The sampling commands never carry the token themselves: the host side appends `ps` to a file read after.
    """

    def __init__(self, hosts: list[Host]) -> None:
        self.hosts = hosts
        self.seen: list[str] = []  # controller samples
        self.on_hosts: dict[str, str] = {}
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._local)] + [
            threading.Thread(target=self._remote, args=(h,)) for h in hosts
        ]

    def _local(self) -> None:
        while not self._stop.is_set():
            self.seen.append(subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout)
            time.sleep(0.01)

    def _remote(self, host: Host) -> None:
        loop = "while [ ! -e /tmp/stop-watch ]; do ps -eo args >> /tmp/ps.log; sleep 0.01; done"
        host.run_nsenter(f"rm -f /tmp/stop-watch /tmp/ps.log; {loop}", timeout=300)

    def __enter__(self) -> ProcessWatch:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for host in self.hosts:
            host.run_nsenter("touch /tmp/stop-watch")
        for thread in self._threads:
            thread.join(timeout=30)
        for host in self.hosts:
            self.on_hosts[host.name] = host.run_nsenter("cat /tmp/ps.log; rm -f /tmp/ps.log /tmp/stop-watch").stdout


def test_hostile_become_passwords_never_run_and_never_leak(become_hosts: Routes, tmp_path: Path) -> None:
    routes = become_hosts
    bast, hop2 = routes.fleet.host("bast"), routes.fleet.host("hop2")
    inventory = become_inventory(routes, tmp_path / "inv.yml", HOSTILE)
    since = cursor(bast)
    with ProcessWatch([bast, hop2]) as processes:
        run = routes.run("apply", "-i", inventory, "--yes", "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.host("bast")["status"] == "changed" and run.host("hop2")["status"] == "changed", run.stdout
    assert "Accepted password for deploy" in sshd_log(bast, since)  # ansible_password logged in
    verified = routes.run("verify", "-i", inventory, "--json")  # verify's sudo takes the same password path
    assert verified.returncode == 0, verified.stdout + verified.stderr
    for host in (bast, hop2):
        nothing_ran(host)
        assert traces(host) == ""
    assert processes.seen and all("ps -eo args" in text for text in processes.on_hosts.values())
    assert any("sudo -S -p" in text for text in processes.on_hosts.values())  # sudo was caught running
    for text in (
        run.stdout,
        run.stderr,
        verified.stdout,
        verified.stderr,
        *processes.seen,
        *processes.on_hosts.values(),
    ):
        assert TOKEN not in text


def test_a_wrong_password_is_refused_once_and_nothing_changes(become_hosts: Routes, tmp_path: Path) -> None:
    routes = become_hosts
    bast = routes.fleet.host("bast")
    before = etc_ssh_state(bast)
    wrong = become_inventory(routes, tmp_path / "inv.yml", HOSTILE.replace("x;", "y;"))
    run = routes.run("apply", "-i", wrong, "--limit", "bast", "--yes", "--json")
    assert run.returncode == 1, run.stdout + run.stderr
    assert run.host("bast")["status"] == "failed"
    assert "sudo refused the become password" in run.host("bast")["reason"]
    assert etc_ssh_state(bast) == before
    nothing_ran(bast)
    assert TOKEN not in run.stdout + run.stderr and traces(bast) == ""


def test_a_password_with_a_line_break_is_bad_input_before_any_contact(become_hosts: Routes, tmp_path: Path) -> None:
    routes = become_hosts
    bast = routes.fleet.host("bast")
    inventory = become_inventory(routes, tmp_path / "inv.yml", f"{TOKEN}\ntouch /tmp/ran5")
    since = cursor(bast)
    run = routes.run("apply", "-i", inventory, "--yes")
    assert run.returncode == 2, run.stdout + run.stderr
    assert "ansible_become_password: contains a line break or NUL" in run.stderr
    assert TOKEN not in run.stdout + run.stderr
    assert sshd_log(bast, since) == ""  # nothing contacted
    nothing_ran(bast)


def run_on_a_terminal(routes: Routes, args: list[str], answer: str) -> tuple[int, str]:
    """Run sshd-setup on a pseudo-terminal, type ANSWER at its password prompt; (exit code, all it wrote)."""
    import pty

    env = {**os.environ, "HOME": str(routes.home)}
    pid, fd = pty.fork()
    if pid == 0:  # the child: sshd-setup with the terminal as its controlling tty
        os.execve(sys.executable, [sys.executable, "-m", "sshd_setup", *args], env)
    seen = b""
    deadline = time.monotonic() + 300
    typed = False
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
        if not typed and b"BECOME password:" in seen:
            os.write(fd, answer.encode() + b"\n")
            typed = True
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), seen.decode(errors="replace")


def test_verify_asks_with_K_and_sends_it_only_to_sudo(become_hosts: Routes, tmp_path: Path) -> None:
    routes = become_hosts
    bast = routes.fleet.host("bast")
    with_password = become_inventory(routes, tmp_path / "with.yml", HOSTILE)
    applied = routes.run("apply", "-i", with_password, "--limit", "bast", "--yes", "--json")
    assert applied.returncode == 0, applied.stdout + applied.stderr  # changed, or unchanged if applied before
    data = yaml.safe_load(with_password.read_text())
    del data["all"]["vars"]["ansible_become_password"]
    asked = tmp_path / "asked.yml"
    asked.write_text(yaml.safe_dump(data))
    code, seen = run_on_a_terminal(routes, ["verify", "-i", str(asked), "--limit", "bast", "-K"], HOSTILE)
    assert code == 0, seen
    assert "1 passed" in seen and TOKEN not in seen  # the terminal did not echo it
    nothing_ran(bast)
    assert traces(bast) == ""
