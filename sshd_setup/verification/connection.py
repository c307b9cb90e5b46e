"""testinfra hosts made from inventory entries: the paramiko backend, with the inventory's known_hosts.

testinfra's own paramiko backend (``paramiko://user@host:port?ssh_identity_file=…``) never loads a
known_hosts file and only warns about unknown host keys. The subclass here checks host keys the way
`sshd-setup apply` does: the files named by ``-o UserKnownHostsFile=…`` in ansible_ssh_common_args (else
ssh's default ~/.ssh/known_hosts) plus /etc/ssh/ssh_known_hosts, strict unless ANSIBLE_HOST_KEY_CHECKING
or ``-o StrictHostKeyChecking`` relax it. The connection itself is `sshd-setup apply`'s
(sshd_setup.sshclient: the same route through jump hosts or a proxy command, timeouts and host keys).
When the inventory says become and the user is not root: `sudo -n` (never a prompt that would hang), or,
with ansible_become_password (or `verify -K`), sudo as sshd_setup.become runs it (the password only on
sudo's own prompt).
"""

from __future__ import annotations

import functools
import os
import urllib.parse
from pathlib import Path
from typing import Any

import paramiko
from testinfra.backend.paramiko import ParamikoBackend

from sshd_setup import become
from sshd_setup.inventory import HostEntry
from sshd_setup.sshclient import close_connection, open_connection, timeout_for
from sshd_setup.transport import _ssh_option, host_key_checking_default

SYSTEM_KNOWN_HOSTS = "/etc/ssh/ssh_known_hosts"
#: The password `sshd-setup verify -K` asked for (in this process only: never an argument or a pytest option).
ASKED_BECOME_PASSWORD: list[str] = []
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

    def get_sudo_command(self, command: str, sudo_user: str | None) -> str:
        if sudo_user not in (None, "root"):
            raise ValueError("sshd-setup's checks run as root only")
        return become.command_as_root(command, self.become_password is not None)

    @property
    def become_password(self) -> str | None:
        """The inventory's ansible_become_password, else the one -K asked for (as apply decides)."""
        return self.entry.connection_vars.become_password or next(iter(ASKED_BECOME_PASSWORD), None)

    def _exec_command(self, command: bytes) -> tuple[int, bytes, bytes]:
        password = self.become_password
        if not (self.sudo and password is not None):
            return super()._exec_command(command)  # type: ignore[no-any-return]
        transport = self.client.get_transport()
        assert transport is not None
        channel = transport.open_session()
        try:
            channel.exec_command(command)
            try:  # the password goes only to sudo's own prompt (sshd_setup.become)
                head, head_err = become.await_root_shell(become.ChannelStreams(channel), password, self.timeout)
            except become.BecomeError as exc:
                return 1, b"", str(exc).encode()
            stdout = head + b"".join(channel.makefile("rb"))
            stderr = head_err + b"".join(channel.makefile_stderr("rb"))
            return channel.recv_exit_status(), stdout, stderr
        finally:
            channel.close()

    def get_pytest_id(self) -> str:
        return self.entry.name

    @functools.cached_property
    def client(self) -> paramiko.SSHClient:
        entry = self.entry
        checking = host_key_checking_default() if self.host_key_checking is None else self.host_key_checking
        if entry.connection_vars.host_key_checking is False:
            checking = False
        self._connection = open_connection(entry, checking, timeout_for(entry, float(self.timeout)))
        client: paramiko.SSHClient = self._connection.client
        return client

    def close_all(self) -> None:
        """Close the connection and the jump host connections it went through."""
        connection = self.__dict__.pop("_connection", None)
        self.__dict__.pop("client", None)
        if connection is not None:
            close_connection(connection)

    def peer_addresses(self) -> tuple[str, str] | None:
        """(our address as the host sees it, the host's address) of the live connection."""
        transport = self.client.get_transport()
        sock = getattr(transport, "sock", None)
        try:
            return str(sock.getsockname()[0]), str(sock.getpeername()[0])  # type: ignore[union-attr]
        except (AttributeError, OSError):
            return None
