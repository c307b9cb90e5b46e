"""sshd_setup/sockets.py: TCP connections started early (Dial) and finished by the host's worker."""

from __future__ import annotations

import errno
import socket

import pytest

from sshd_setup.sockets import start_dial


def test_a_dial_finishes_into_a_connected_socket_without_nagle() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        dial = start_dial("127.0.0.1", server.getsockname()[1])
        assert dial is not None
        sock = dial.finish(5.0)
        peer, _ = server.accept()
        with peer:
            sock.sendall(b"ping")
            assert peer.recv(4) == b"ping"
            peer.sendall(b"pong")
            assert sock.recv(4) == b"pong"
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert sock.gettimeout() == 5.0  # blocking with a timeout again, as tcp_connection makes it
        sock.close()


def test_a_dial_to_a_closed_port_reports_the_refusal_when_finished() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
    dial = start_dial("127.0.0.1", port)  # nothing listens there any more
    assert dial is not None
    with pytest.raises(OSError) as raised:
        dial.finish(5.0)
    assert raised.value.errno == errno.ECONNREFUSED


def test_host_names_are_not_dialled_early() -> None:
    assert start_dial("localhost", 22) is None  # resolving a name would block the caller
    assert start_dial("not an address", 22) is None
