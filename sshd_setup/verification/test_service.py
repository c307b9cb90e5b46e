"""sshd runs under the right unit (ssh or sshd; the socket on a socket-activated host) and listens where the
gateway connects: port 22, or `sshd_setup.port` with `flow: access-infrastructure`."""

from __future__ import annotations

from collections.abc import Callable

from sshd_setup.verification.target import VerifyHost, fail

RecordProperty = Callable[[str, object], None]


def test_sshd_active(target: VerifyHost, record_property: RecordProperty) -> None:
    """The host's sshd unit is active (ssh.service or sshd.service; ssh.socket when socket-activated)."""
    service = target.service
    if service.manager != "systemd":
        result = target.run(service.check)
        if result.rc != 0:
            fail(f"sshd is not running: `{service.check}` exited {result.rc}")
        record_property("sshd_setup_detail", f"`{service.check}` succeeded")
        return
    # On a socket-activated host the socket is what must be up: it starts sshd for the next connection.
    unit = f"{service.unit}.socket" if target.facts.socket_activated else f"{service.unit}.service"
    state = target.run(f"systemctl is-active {unit}").stdout.strip() or "unknown"
    if state != "active":
        fail(f"{unit} is {state}, expected active (`systemctl start {unit}`; check `journalctl -u {unit}`)")
    record_property("sshd_setup_detail", f"{unit} is active")


def test_listening_on_22(target: VerifyHost, record_property: RecordProperty) -> None:
    """Something listens on the TCP port the gateway connects to (22; access-infrastructure: sshd_setup.port)."""
    port = str(target.desired.port)
    try:
        sockets = [str(s) for s in target.host.socket.get_listening_sockets()]
    except Exception as exc:  # neither ss nor netstat on the host
        fail(f"cannot list listening sockets (needs ss or netstat): {exc}")
        return
    if not any(s.startswith("tcp://") and s.rsplit(":", 1)[-1] == port for s in sockets):
        tcp = sorted({s.removeprefix("tcp://") for s in sockets if s.startswith("tcp://")})
        fail(f"nothing listens on TCP port {port} (TCP listeners: {', '.join(tcp) or 'none'})")
    listening = [s.removeprefix("tcp://") for s in sockets if s.endswith(f":{port}")]
    record_property("sshd_setup_detail", ", ".join(listening))
