"""sshd runs under the right unit (ssh or sshd; the socket on a socket-activated host) and listens on 22."""

from __future__ import annotations

from sshd_setup.verification.target import VerifyHost, fail


def test_sshd_active(target: VerifyHost) -> None:
    """The host's sshd unit is active (ssh.service or sshd.service; ssh.socket when socket-activated)."""
    service = target.service
    if service.manager != "systemd":
        result = target.run(service.check)
        if result.rc != 0:
            fail(f"sshd is not running: `{service.check}` exited {result.rc}")
        return
    unit = service.check.split()[-1]  # systemctl is-active --quiet UNIT: the service, or the socket
    state = target.run(f"systemctl is-active {unit}").stdout.strip() or "unknown"
    if state != "active":
        fail(f"{unit} is {state}, expected active (`systemctl start {unit}`; check `journalctl -u {unit}`)")


def test_listening_on_22(target: VerifyHost) -> None:
    """Something listens on TCP port 22, where the gateway connects."""
    try:
        sockets = [str(s) for s in target.host.socket.get_listening_sockets()]
    except Exception as exc:  # neither ss nor netstat on the host
        fail(f"cannot list listening sockets (needs ss or netstat): {exc}")
        return
    if not any(s.startswith("tcp://") and s.rsplit(":", 1)[-1] == "22" for s in sockets):
        tcp = sorted({s.removeprefix("tcp://") for s in sockets if s.startswith("tcp://")})
        fail(f"nothing listens on TCP port 22 (TCP listeners: {', '.join(tcp) or 'none'})")
