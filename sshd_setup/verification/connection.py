"""testinfra hosts made from inventory entries: the paramiko backend, connected as `sshd-setup apply` connects.

testinfra's own paramiko backend (``paramiko://user@host:port?ssh_identity_file=…``) never loads a
known_hosts file, only warns about unknown host keys and knows no jump host. The subclass here takes its
connection from sshd_setup.sshclient, as apply does: the same route (jump hosts, proxy command), the same
known_hosts files (``-o UserKnownHostsFile=…``, else ssh's defaults, plus /etc/ssh/ssh_known_hosts),
strict unless ANSIBLE_HOST_KEY_CHECKING or ``-o StrictHostKeyChecking`` relax it, the same timeouts.
When the inventory says become and the user is not root: `sudo -n` (never a prompt that would hang), or,
with ansible_become_password (or `verify -K`, passed to the checks in SSHD_SETUP_BECOME_PASSWORD), sudo
as sshd_setup.become runs it (the password only on sudo's own prompt).
"""

from __future__ import annotations

import functools
import os
import urllib.parse
from typing import Any

import paramiko
from testinfra.backend.paramiko import ParamikoBackend

from sshd_setup import become
from sshd_setup.inventory import HostEntry
from sshd_setup.sshclient import close_connection, open_connection, timeout_for
from sshd_setup.transport import host_key_checking_default

#: `sshd-setup verify -K` hands the password to the checks (and xdist workers) here: never argv or output.
BECOME_PASSWORD_ENV = "SSHD_SETUP_BECOME_PASSWORD"


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
        return self.entry.connection_vars.become_password or os.environ.get(BECOME_PASSWORD_ENV) or None

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
            pass
        # through a jump host or a proxy command: ask sshd (SSH_CONNECTION: client ip, port, server ip, port)
        try:
            _, stdout, _ = self.client.exec_command('printf %s "$SSH_CONNECTION"', timeout=self.timeout)
            words = stdout.read().decode("utf-8", "replace").split()
        except (OSError, EOFError, paramiko.SSHException):
            return None
        return (words[0], words[2]) if len(words) == 4 else None
