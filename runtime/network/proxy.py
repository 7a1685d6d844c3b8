"""The userland proxy for published ports, as docker-proxy is: it listens on HOST_IP:PORT on
the host and relays each TCP connection (or UDP flow) to the container's address and port.
It needs no iptables and works on loopback.

The sockets are bound by the process starting the container, so a port in use fails the
start with docker's message; a forked child then serves them (runtime.network.relay, asyncio,
imported only in that child) until it is killed, or its parent dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
from collections.abc import Sequence
from typing import NoReturn

from runtime import _linux
from runtime.network.ports import PortMapping
from runtime.network.store import NetworkError

_NO_IPV6 = (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT)


class PortInUse(NetworkError):
    pass


def _listen(address: str, port: int, protocol: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(family, kind)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        if kind == socket.SOCK_STREAM:
            sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return sock


def bind(mappings: Sequence[PortMapping]) -> list[tuple[PortMapping, socket.socket]]:
    """Listening sockets for the mappings: on HOST_IP, or as docker on 0.0.0.0 and :: (the
    same port; IPv4 alone where the host has no IPv6). Each mapping returned names the
    address and the port (the one the kernel picked, for an empty HOSTPORT)."""
    bound: list[tuple[PortMapping, socket.socket]] = []
    try:
        for m in mappings:
            port = m.host_port
            for address in [m.host_ip] if m.host_ip else ["0.0.0.0", "::"]:
                try:
                    sock = _listen(address, port, m.protocol)
                except OSError as exc:
                    if not m.host_ip and address == "::" and exc.errno in _NO_IPV6:
                        continue
                    if exc.errno == errno.EADDRINUSE:
                        raise PortInUse(
                            f"Bind for {address}:{port} failed: port is already allocated"
                        ) from None
                    raise NetworkError(
                        f"Bind for {address}:{port} failed: {exc.strerror}"
                    ) from None
                port = sock.getsockname()[1]
                bound.append((PortMapping(m.container_port, m.protocol, address, port), sock))
    except BaseException:
        for _, sock in bound:
            sock.close()
        raise
    return bound


def spawn(bound: Sequence[tuple[PortMapping, socket.socket]], target: str) -> int:
    """Fork the proxy serving `bound` for the container at `target`; returns its pid. The
    caller's copies of the sockets are closed."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - seen through its effects
        try:
            _serve(bound, target)
        finally:
            os._exit(1)
    for _, sock in bound:
        sock.close()
    return pid


def stop(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _detach_from_parent(keep: set[int]) -> None:
    """Hold none of the parent's descriptors: a pipe kept open here would keep `run -d`
    or the log copier waiting for an EOF."""
    _linux.prctl(_linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    keep |= {0, 1, 2}
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd not in keep:
            with contextlib.suppress(OSError):
                os.close(fd)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def _serve(bound: Sequence[tuple[PortMapping, socket.socket]], target: str) -> NoReturn:
    _detach_from_parent({sock.fileno() for _, sock in bound})
    from runtime.network import relay  # asyncio, imported here while the container starts

    relay.serve(bound, target)
    os._exit(0)
