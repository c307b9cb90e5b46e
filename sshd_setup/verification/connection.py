"""testinfra hosts made from inventory entries: the paramiko backend, with the inventory's known_hosts.

testinfra's own paramiko backend (``paramiko://user@host:port?ssh_identity_file=…``) never loads a
known_hosts file and only warns about unknown host keys. The subclass here checks host keys the way
`sshd-setup apply` does: the files named by ``-o UserKnownHostsFile=…`` in ansible_ssh_common_args (else
ssh's default ~/.ssh/known_hosts) plus /etc/ssh/ssh_known_hosts, strict unless ANSIBLE_HOST_KEY_CHECKING
or ``-o StrictHostKeyChecking`` relax it. `sudo -n` (never a password prompt that would hang) when the
inventory says become and the user is not root; `sudo -S` with the password on the command's input when
SSHD_SETUP_BECOME_PASSWORD is set (`verify -K`).
"""

from __future__ import annotations

import functools
import os
import socket
import urllib.parse
from pathlib import Path
from typing import Any

import paramiko
from testinfra.backend.paramiko import ParamikoBackend

from sshd_setup.inventory import HostEntry
from sshd_setup.transport import _ssh_option, host_key_checking_default

BECOME_PASSWORD_ENV = "SSHD_SETUP_BECOME_PASSWORD"
SYSTEM_KNOWN_HOSTS = "/etc/ssh/ssh_known_hosts"
DEFAULT_KNOWN_HOSTS = ("~/.ssh/known_hosts", "~/.ssh/known_hosts2")


def uses_sudo(entry: HostEntry) -> bool:
    """As the transport decides: become, unless we already log in as root (or run locally as root)."""
    if not entry.become:
        return False
    if entry.is_local:
        return os.geteuid() != 0
    return entry.user != "root"


def hostspec(entry: HostEntry) -> str:
    """The testinfra host URL for this entry (what a testinfra user would write by hand)."""
    if entry.is_local:
        return "local://" + ("?sudo=true" if uses_sudo(entry) else "")
    address = f"[{entry.address}]" if ":" in entry.address else entry.address
    netloc = (urllib.parse.quote(entry.user, safe="") + "@" if entry.user else "") + address
    if entry.port:
        netloc += f":{entry.port}"
    query: dict[str, str] = {}
    if entry.key_file:
        query["ssh_identity_file"] = entry.key_file
    if uses_sudo(entry):
        query["sudo"] = "true"
    return f"paramiko://{netloc}" + (f"?{urllib.parse.urlencode(query)}" if query else "")


def known_hosts_files(entry: HostEntry, ssh_config: dict[str, Any]) -> list[Path]:
    named = _ssh_option(entry.ssh_args, "UserKnownHostsFile") or ssh_config.get("userknownhostsfile")
    candidates = str(named).split() if named else list(DEFAULT_KNOWN_HOSTS)
    files = [Path(os.path.expanduser(c)) for c in [*candidates, SYSTEM_KNOWN_HOSTS]]
    return [f for f in files if f.is_file()]


def host_key_policy(entry: HostEntry, checking: bool | None) -> paramiko.MissingHostKeyPolicy:
    """Reject unknown host keys unless relaxed; a CHANGED known key is refused by paramiko either way."""
    strict = _ssh_option(entry.ssh_args, "StrictHostKeyChecking")
    if strict is not None and strict.lower() in ("no", "off", "accept-new"):
        return paramiko.AutoAddPolicy()
    if checking is None:
        checking = host_key_checking_default()
    return paramiko.RejectPolicy() if checking else paramiko.AutoAddPolicy()


def _user_ssh_config(address: str) -> dict[str, Any]:
    path = Path(os.path.expanduser("~/.ssh/config"))
    if not path.is_file():
        return {}
    try:
        return dict(paramiko.SSHConfig.from_path(str(path)).lookup(address))
    except (OSError, paramiko.SSHException):
        return {}


def make_host(entry: HostEntry, host_key_checking: bool | None = None, timeout: float = 10.0) -> Any:
    """A testinfra Host for ENTRY; connects on its first command."""
    import testinfra.host

    if entry.is_local:
        return testinfra.get_host(hostspec(entry))
    backend = InventoryParamikoBackend(entry, host_key_checking, timeout)
    return testinfra.host.Host(backend)


class InventoryParamikoBackend(ParamikoBackend):  # type: ignore[misc]
    """testinfra's paramiko backend, connecting exactly as the inventory entry says (see module doc)."""

    NAME = "paramiko"

    def __init__(self, entry: HostEntry, host_key_checking: bool | None, timeout: float) -> None:
        spec = hostspec(entry).removeprefix("paramiko://").split("?", 1)[0]
        super().__init__(spec, ssh_identity_file=entry.key_file, timeout=int(timeout), sudo=uses_sudo(entry))
        self.entry = entry
        self.host_key_checking = host_key_checking

    @property
    def become_password(self) -> str | None:
        return os.environ.get(BECOME_PASSWORD_ENV) or None

    def get_sudo_command(self, command: str, sudo_user: str | None) -> str:
        how = "-S -p ''" if self.become_password is not None else "-n"  # -S: the password comes on stdin
        if sudo_user is None:
            return f"sudo {how} " + str(self.quote("/bin/sh -c %s", command))
        return f"sudo {how} " + str(self.quote("-u %s /bin/sh -c %s", sudo_user, command))

    def _exec_command(self, command: bytes) -> tuple[int, bytes, bytes]:
        """As testinfra's, with the become password (if any) on the command's input, never in its line."""
        password = self.become_password
        if password is None or not self.sudo:
            return super()._exec_command(command)  # type: ignore[no-any-return]
        transport = self.client.get_transport()
        assert transport is not None
        channel = transport.open_session()
        try:
            channel.exec_command(command)
            channel.sendall((password + "\n").encode())
            channel.shutdown_write()
            stdout = b"".join(channel.makefile("rb"))
            stderr = b"".join(channel.makefile_stderr("rb"))
            return channel.recv_exit_status(), stdout, stderr
        finally:
            channel.close()

    def get_pytest_id(self) -> str:
        return self.entry.name

    @functools.cached_property
    def client(self) -> paramiko.SSHClient:
        entry = self.entry
        config = _user_ssh_config(entry.address)
        client = paramiko.SSHClient()
        for file in known_hosts_files(entry, config):
            client.load_host_keys(str(file))
        client.set_missing_host_key_policy(host_key_policy(entry, self.host_key_checking))
        kwargs: dict[str, Any] = {
            "hostname": config.get("hostname", entry.address),
            "port": entry.port or int(config.get("port", 22)),
            "username": entry.user or config.get("user"),
            "timeout": self.timeout,
            "banner_timeout": self.timeout,
            "auth_timeout": self.timeout,
        }
        key_file = entry.key_file or (config.get("identityfile") or [None])[0]
        if key_file:
            kwargs["key_filename"] = os.path.expanduser(key_file)
            kwargs["look_for_keys"] = entry.key_file is None
        # TCP_NODELAY, as the transport does: each command waits for its reply, and Nagle's algorithm
        # meeting the peer's delayed ACK would add ~40 ms to every one of them.
        sock = socket.create_connection((kwargs["hostname"], kwargs["port"]), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            client.connect(sock=sock, **kwargs)
        except BaseException:
            client.close()
            sock.close()
            raise
        return client

    def peer_addresses(self) -> tuple[str, str] | None:
        """(our address as the host sees it, the host's address) of the live connection."""
        transport = self.client.get_transport()
        sock = getattr(transport, "sock", None)
        try:
            return str(sock.getsockname()[0]), str(sock.getpeername()[0])  # type: ignore[union-attr]
        except (AttributeError, OSError):
            return None
