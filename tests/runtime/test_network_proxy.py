"""The userland proxy of published ports (runtime.network.proxy), on loopback: TCP relayed
both ways with half-close, UDP datagrams and their replies, a port in use refused."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from runtime.network import proxy
from runtime.network.ports import PortMapping


@pytest.fixture
def tcp_upper() -> Iterator[int]:
    """A server on 127.0.0.1 that reads to EOF, then answers with the bytes upper-cased."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                data = b""
                while chunk := conn.recv(65536):
                    data += chunk
                conn.sendall(data.upper())

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


@pytest.fixture
def udp_echo() -> Iterator[int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                data, addr = sock.recvfrom(65536)
            except OSError:
                return
            sock.sendto(b"echo:" + data, addr)

    threading.Thread(target=serve, daemon=True).start()
    yield sock.getsockname()[1]
    sock.close()


def test_tcp_and_udp_are_relayed(tcp_upper: int, udp_echo: int) -> None:
    bound = proxy.bind([
        PortMapping(tcp_upper, "tcp", "127.0.0.1"),
        PortMapping(udp_echo, "udp", "127.0.0.1"),
    ])  # fmt: skip
    (tcp, _), (udp, _) = bound
    assert tcp.host_port > 0  # picked by the kernel
    assert udp.host_port > 0
    pid = proxy.spawn(bound, "127.0.0.1")
    try:
        payload = b"x" * 300_000 + b"end"
        for _ in range(3):  # one connection after another
            with socket.create_connection(("127.0.0.1", tcp.host_port), timeout=10) as c:
                c.sendall(payload)
                c.shutdown(socket.SHUT_WR)  # the server answers at EOF: half-close relayed
                got = b""
                while chunk := c.recv(65536):
                    got += chunk
            assert got == payload.upper()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(10)
            for i in range(3):
                u.sendto(f"ping {i}".encode(), ("127.0.0.1", udp.host_port))
                assert u.recvfrom(65536)[0] == f"echo:ping {i}".encode()
    finally:
        proxy.stop(pid)
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", tcp.host_port)) != 0  # gone with the proxy


def test_nothing_listening_in_the_container_closes_the_client() -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    target_port = closed.getsockname()[1]
    closed.close()
    bound = proxy.bind([PortMapping(target_port, "tcp", "127.0.0.1")])
    pid = proxy.spawn(bound, "127.0.0.1")
    try:
        with socket.create_connection(("127.0.0.1", bound[0][0].host_port), timeout=10) as c:
            assert c.recv(1) == b""
    finally:
        proxy.stop(pid)


def test_a_port_in_use_is_refused_with_dockers_message() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(proxy.PortInUse, match=f"Bind for 127.0.0.1:{port} failed: port is"):
            proxy.bind([PortMapping(80, "tcp", "127.0.0.1", port)])
