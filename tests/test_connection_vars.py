"""Connection variables as Ansible's ssh connection reads them; sudo's password exchange; up-front checks."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from sshd_setup import become, sshconfig
from sshd_setup.connection_vars import read_connection_vars, ssh_options
from sshd_setup.errors import InputError
from sshd_setup.inventory import load_inventory
from sshd_setup.sshclient import goes_direct
from tests.fleetrun import sshd_setup
from tests.helpers import CA_KEY

WHERE = "inv.yml: host web1"


def conn(**hvars: object) -> object:
    return read_connection_vars(hvars, WHERE, become=bool(hvars.pop("_become", False)))


def test_args_are_split_as_a_shell_splits_them_and_the_first_value_wins() -> None:
    found = read_connection_vars(
        {
            "ansible_ssh_common_args": "-o 'ProxyCommand=ssh -W %h:%p -i \"/keys/my key\" bastion' -o ConnectTimeout=7",
            "ansible_ssh_extra_args": "-o ProxyJump=other -o ConnectTimeout=30",
        },
        WHERE,
        become=False,
    )
    assert found.proxy_command == 'ssh -W %h:%p -i "/keys/my key" bastion'
    assert found.proxy_jump is None  # ProxyCommand came first: ssh ignores the later ProxyJump
    assert found.connect_timeout == 7.0
    assert found.proxied
    assert ssh_options(["-J", "a,b", "-oProxyCommand=x"]) == {"proxyjump": "a,b"}
    assert ssh_options(["-o", "UserKnownHostsFile /k", "-oUserKnownHostsFile=/j"]) == {"userknownhostsfile": "/k"}


def test_proxy_jump_chains_and_none() -> None:
    chain = read_connection_vars({"ansible_ssh_common_args": "-J ops@b1:2222,ssh://b2,[2001:db8::1]:22"}, WHERE, False)
    assert chain.proxy_jump == "ops@b1:2222,ssh://b2,[2001:db8::1]:22" and chain.proxied
    off = read_connection_vars({"ansible_ssh_common_args": "-o ProxyJump=none"}, WHERE, False)
    assert off.proxy_jump == "none" and not off.proxied
    with pytest.raises(InputError, match="ProxyJump hop 'bad host'"):
        read_connection_vars({"ansible_ssh_common_args": "-o 'ProxyJump=bad host'"}, WHERE, False)
    with pytest.raises(InputError, match="bad port"):
        read_connection_vars({"ansible_ssh_common_args": "-J b1:99999"}, WHERE, False)


@pytest.mark.parametrize(
    ("hvars", "message"),
    [
        ({"ansible_ssh_common_args": "-o ForwardX11Trusted=yes"}, "ssh option 'ForwardX11Trusted' is not supported"),
        ({"ansible_ssh_extra_args": "-F /etc/other_config"}, "ssh flag -F is not supported"),
        ({"ansible_ssh_args": "-o 'ProxyCommand=ssh -W %h:%p b"}, "cannot split it as a shell would"),
        ({"ansible_ssh_common_args": "bastion"}, "unexpected argument 'bastion'"),
        ({"ansible_ssh_comon_args": "-J b"}, "unknown connection variable (did you mean ansible_ssh_common_args?)"),
        ({"ansible_ssh_executable": "/usr/local/bin/tsh-ssh"}, "not supported: sshd-setup connects with paramiko"),
        ({"ansible_become_pasword": "x"}, "did you mean ansible_become_password?"),
        ({"ansible_timeout": "soon"}, "must be a number of seconds"),
        ({"ansible_ssh_common_args": "-o ProxyCommand={{ proxy }}"}, "Jinja2 templates are not evaluated"),
        ({"_become": True, "ansible_become_method": "su"}, "'su' is not supported (sshd-setup becomes root with sudo)"),
        ({"_become": True, "ansible_become_user": "postgres"}, "'postgres' is not supported"),
        ({"_become": True, "ansible_become_flags": "-i"}, "only -H -S -n -E are understood"),
    ],
)
def test_what_we_do_not_implement_is_an_error_naming_it(hvars: dict[str, object], message: str) -> None:
    with pytest.raises(InputError) as caught:
        conn(**hvars)
    assert message in str(caught.value)
    assert str(caught.value).startswith(WHERE)


def test_harmless_options_and_variables_are_warnings() -> None:
    found = read_connection_vars(
        {
            "ansible_ssh_args": "-C -o ControlMaster=auto -o ControlPersist=60s",
            "ansible_python_interpreter": "/usr/bin/python3",
            "ansible_distribution_hint": "debian",
            "ansible_become_method": "su",  # become is off: irrelevant
        },
        WHERE,
        become=False,
    )
    assert found.ssh_args == ("-C", "-o", "ControlMaster=auto", "-o", "ControlPersist=60s")
    text = "\n".join(found.warnings)
    for word in ("-C", "ControlMaster", "ControlPersist", "ansible_python_interpreter", "ansible_distribution_hint"):
        assert word in text


def test_passwords_are_read_never_shown_and_one_line() -> None:
    secret = "s3cr;et'\"$(x)`y`"
    found = read_connection_vars(
        {"ansible_ssh_pass": secret, "ansible_become_pass": secret, "ansible_host_key_checking": "no"}, WHERE, True
    )
    assert found.password == secret and found.become_password == secret and found.host_key_checking is False
    assert secret not in repr(found)
    with pytest.raises(InputError) as caught:
        read_connection_vars({"ansible_become_password": "line1\nid > /tmp/p"}, WHERE, True)
    assert "line break" in str(caught.value) and "line1" not in str(caught.value)
    assert read_connection_vars({"ansible_sudo_pass": 1234}, WHERE, True).become_password == "1234"


def test_inventory_aliases_and_entry_fields(tmp_path: Path) -> None:
    inventory = tmp_path / "inv.ini"
    host = (
        "web1 ansible_ssh_host=192.0.2.10 ansible_ssh_port=2200 ansible_ssh_user=deploy ansible_become=yes"
        " ansible_become_password='p w;x' ansible_ssh_common_args='-o \"ProxyJump=ops@192.0.2.1\"'"
    )
    inventory.write_text(f'[web]\n{host}\n[all:vars]\nsshd_setup={{"ca_keys": ["{CA_KEY}"]}}\n')
    entry = load_inventory(inventory).hosts["web1"]
    assert (entry.address, entry.port, entry.user, entry.become) == ("192.0.2.10", 2200, "deploy", True)
    assert entry.connection_vars.become_password == "p w;x"
    assert entry.connection_vars.proxy_jump == "ops@192.0.2.1"
    assert entry.ssh_args == ("-o", "ProxyJump=ops@192.0.2.1")
    assert not goes_direct(entry)


def test_proxy_jump_in_ssh_config_include_means_no_direct_dial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ssh = tmp_path / ".ssh"
    (ssh / "conf.d").mkdir(parents=True)
    (ssh / "config").write_text("Host 192.0.2.*\n    Include conf.d/*.conf\n    User ops\n")
    (ssh / "conf.d" / "jump.conf").write_text("Host 192.0.2.20\n    ProxyJump bastion\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(sshconfig, "SYSTEM_CONFIG", str(tmp_path / "none"))
    inventory = tmp_path / "inv.yml"
    hosts = {"near": {"ansible_host": "192.0.2.10"}, "far": {"ansible_host": "192.0.2.20"}}
    inventory.write_text(yaml.safe_dump({"all": {"vars": {"sshd_setup": {"ca_keys": [CA_KEY]}}, "hosts": hosts}}))
    inv = load_inventory(inventory)
    assert goes_direct(inv.hosts["near"]) and not goes_direct(inv.hosts["far"])
    # after the Include, the enclosing Host block goes on (as in ssh)
    assert sshconfig.ssh_config().lookup("192.0.2.10").get("user") == "ops"


# ---------------------------------------------------------------- sudo's password exchange (real processes)

FAKE_SUDO = """
import os, sys
prompt, marker, wanted, mode = sys.argv[1:5]
if mode == "nopasswd":
    print(marker, flush=True)
    os.execvp("sh", ["sh", "-s"])
for _ in range(3):
    sys.stderr.write(prompt); sys.stderr.flush()
    if sys.stdin.buffer.readline().rstrip(b"\\n") == wanted.encode():
        print(marker, flush=True)
        os.execvp("sh", ["sh", "-s"])
    sys.stderr.write("Sorry, try again.\\n")
sys.exit(1)
"""


def fake_sudo(tmp_path: Path, wanted: str, mode: str) -> subprocess.Popen[bytes]:
    script = tmp_path / "fake_sudo.py"
    script.write_text(FAKE_SUDO)
    argv = [sys.executable, str(script), become.PROMPT, become.MARKER, wanted, mode]
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


HOSTILE = "x; touch {p}/ran1 #'\"$(touch {p}/ran2)`touch {p}/ran3`"


@pytest.mark.parametrize("mode", ["password", "nopasswd"])
def test_the_password_reaches_only_sudos_prompt(tmp_path: Path, mode: str) -> None:
    password = HOSTILE.format(p=tmp_path)
    with fake_sudo(tmp_path, password, mode) as proc:
        head, _ = become.await_root_shell(become.ProcessStreams(proc), password, 10)
        out, _ = proc.communicate(f"echo shell-ran; ls {shlex.quote(str(tmp_path))}\n".encode(), timeout=10)
    assert head + out == b"shell-ran\nfake_sudo.py\n"  # the shell ran our script and nothing created ran*


def test_a_wrong_password_is_sent_once_then_the_session_ends(tmp_path: Path) -> None:
    password = HOSTILE.format(p=tmp_path)
    with fake_sudo(tmp_path, "the right one", "password") as proc:
        with pytest.raises(become.BecomeError, match="sudo refused the become password"):
            become.await_root_shell(become.ProcessStreams(proc), password, 10)
        proc.kill()
        proc.communicate()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake_sudo.py"]


def test_the_sudo_commands_carry_no_secret() -> None:
    assert become.shell_command(False) == "sudo -n -- sh -s"
    command = become.shell_command(True)
    assert shlex.split(command)[:4] == ["sudo", "-S", "-p", become.PROMPT]
    assert shlex.split(become.command_as_root("cat /etc/ssh/ca.pub", True))[-1] == "cat /etc/ssh/ca.pub"


# ---------------------------------------------------------------- up-front checks and timeouts (CLI)


def inventory_with(tmp_path: Path, **hvars: object) -> Path:
    path = tmp_path / "inventory.yml"
    host = {"ansible_host": "127.0.0.1", **hvars}
    path.write_text(yaml.safe_dump({"all": {"vars": {"sshd_setup": {"ca_keys": [CA_KEY]}}, "hosts": {"h1": host}}}))
    return path


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that accepts and never says anything (no SSH banner)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    server.close()
    for sock in accepted:
        sock.close()


def test_a_missing_key_file_is_bad_input_before_any_contact(tmp_path: Path, silent_server: int) -> None:
    missing = tmp_path / "no_such_key"
    inventory = inventory_with(tmp_path, ansible_port=silent_server, ansible_ssh_private_key_file=str(missing))
    for command in ("check", "verify"):
        run = sshd_setup(command, "-i", inventory)
        assert run.returncode == 2, run.stdout + run.stderr
        assert f"host h1: ansible_ssh_private_key_file: {missing} does not exist" in run.stderr
        assert "Traceback" not in run.stderr


def test_a_host_without_banner_is_one_line_within_the_timeout(tmp_path: Path, silent_server: int) -> None:
    inventory = inventory_with(tmp_path, ansible_port=silent_server)
    run = sshd_setup("check", "-i", inventory, "--timeout", "1", "--no-host-key-checking", "--json")
    assert run.returncode == 1, run.stdout + run.stderr
    assert run.host("h1")["status"] == "unreachable"
    assert run.host("h1")["reason"] == (
        "ssh to 127.0.0.1: no SSH banner within 1s (is it an SSH server? raise --timeout if it is slow)"
    )
    assert run.stderr.strip() == ""  # no traceback, no paramiko log lines
    bad = sshd_setup("check", "-i", inventory, "--timeout", "0")
    assert bad.returncode == 2 and "--timeout: must be between 1 and 3600 seconds" in bad.stderr


def test_refused_become_settings_exit_2_naming_the_variable(tmp_path: Path) -> None:
    inventory = inventory_with(tmp_path, ansible_user="deploy", ansible_become=True, ansible_become_method="doas")
    run = sshd_setup("check", "-i", inventory)
    assert run.returncode == 2
    assert "inventory.yml: all.hosts.h1.ansible_become_method: 'doas' is not supported" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


SUDO_ON_PATH = """#!/usr/bin/env python3
# stands in for sudo: -n fails; -S -p PROMPT asks (FAKE_SUDO_MODE=password) or not (nopasswd)
import os, sys
args = sys.argv[1:]
if args[0] == "-n":
    sys.exit("sudo: a password is required")
prompt, command = args[2], args[args.index("--") + 1 :]
if os.environ["FAKE_SUDO_MODE"] == "password":
    sys.stderr.write(prompt); sys.stderr.flush()
    if sys.stdin.buffer.readline().rstrip(b"\\n") != os.environ["FAKE_SUDO_WANTS"].encode():
        sys.stderr.write("Sorry, try again.\\n" + prompt); sys.stderr.flush()
        sys.exit(1)
os.execvp(command[0], command)
"""


@pytest.mark.parametrize("mode", ["password", "nopasswd"])
def test_local_become_sends_the_password_only_to_the_prompt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    from sshd_setup.transport import ConnectOptions, LocalTransport

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sudo").write_text(SUDO_ON_PATH)
    (bin_dir / "sudo").chmod(0o755)
    password = HOSTILE.format(p=tmp_path)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SUDO_MODE", mode)
    monkeypatch.setenv("FAKE_SUDO_WANTS", password)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # as a non-root user: through sudo
    inventory = inventory_with(tmp_path, ansible_connection="local", ansible_become=True)
    entry = load_inventory(inventory).hosts["h1"]
    transport = LocalTransport(entry, ConnectOptions(become_password=password))
    result = transport.run_script(f"echo ran; ls {shlex.quote(str(tmp_path))}\n")
    assert (result.returncode, result.stdout) == (0, "ran\nbin\ninventory.yml\n"), result
    wrong = LocalTransport(entry, ConnectOptions(become_password="not it")).run_script("echo ran\n")
    if mode == "password":
        assert wrong.returncode == 1 and "sudo refused the become password" in wrong.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "inventory.yml"]  # no ran1..3
    no_password = LocalTransport(entry, ConnectOptions()).run_script("echo ran\n")
    assert no_password.returncode == 1 and "a password is required" in no_password.stderr


def test_routes_are_built_as_ssh_builds_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Jump chains in ssh's order with no hop left to Fabric's own chain; ProxyCommand as ssh runs it."""
    from sshd_setup.sshclient import _Builder

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SHELL", "/bin/sh")
    monkeypatch.setattr(sshconfig, "SYSTEM_CONFIG", str(tmp_path / "none"))
    inventory = inventory_with(
        tmp_path,
        ansible_user="deploy",
        ansible_ssh_common_args="-o 'ProxyCommand=nc -X connect -x proxy:3128 %r@%h %p'",
    )
    command = _Builder(load_inventory(inventory).hosts["h1"], True, 5).target()[0]
    assert command.gateway == "/bin/sh -c 'exec nc -X connect -x proxy:3128 deploy@%h %p'"
    inventory = inventory_with(tmp_path, ansible_ssh_common_args="-J ops@b1:2222,b2")
    target = _Builder(load_inventory(inventory).hosts["h1"], True, 5).target()[0]
    second = target.gateway
    first = second.gateway
    assert (second.host, first.host, first.user, first.port) == ("b2", "b1", "ops", 2222)
    assert first.gateway is False  # b1 is dialled directly: the first hop


def test_a_wildcard_proxy_jump_does_not_route_the_jump_host_through_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sshd_setup.sshclient import _Builder

    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text("Host 10.9.*\n    ProxyJump ops@10.9.0.1\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(sshconfig, "SYSTEM_CONFIG", str(tmp_path / "none"))
    inventory = inventory_with(tmp_path, ansible_host="10.9.0.7")
    entry = load_inventory(inventory).hosts["h1"]
    assert not goes_direct(entry)
    target = _Builder(entry, True, 5).target()[0]
    assert (target.gateway.host, target.gateway.user, target.gateway.gateway) == ("10.9.0.1", "ops", False)
