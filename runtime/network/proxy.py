"""The userland proxy for published ports, as docker-proxy is: it listens on HOST_IP:PORT on
the host and relays each TCP connection (or UDP flow) to the container's address and port.
It needs no iptables and works on loopback.

The sockets are bound by the process starting the container, so a port in use fails the
start with docker's message; a forked child then serves them with asyncio until it is
killed, or its parent dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import os
import signal
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import NoReturn, cast

from runtime import _linux
from runtime.network.ports import PortMapping
from runtime.network.store import NetworkError

UDP_IDLE = 90.0  # seconds a UDP flow is kept without traffic (conntrack's default stream)


class PortInUse(NetworkError):
    pass


def bind(mappings: Sequence[PortMapping]) -> list[tuple[PortMapping, socket.socket]]:
    """Listening sockets for the mappings, with the host ports the kernel picked filled in."""
    bound: list[tuple[PortMapping, socket.socket]] = []
    try:
        for m in mappings:
            family = socket.AF_INET6 if ":" in m.bind_ip else socket.AF_INET
            kind = socket.SOCK_STREAM if m.protocol == "tcp" else socket.SOCK_DGRAM
            sock = socket.socket(family, kind)
            bound.append((m, sock))
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((m.bind_ip, m.host_port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise PortInUse(
                        f"Bind for {m.bind_ip}:{m.host_port} failed: port is already allocated"
                    ) from None
                raise NetworkError(
                    f"Bind for {m.bind_ip}:{m.host_port} failed: {exc.strerror}"
                ) from None
            if kind == socket.SOCK_STREAM:
                sock.listen(128)
            port = sock.getsockname()[1]
            bound[-1] = (PortMapping(m.container_port, m.protocol, m.host_ip, port), sock)
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
    asyncio.run(_main(bound, target))
    os._exit(0)


async def _main(bound: Sequence[tuple[PortMapping, socket.socket]], target: str) -> None:
    loop = asyncio.get_running_loop()
    for m, sock in bound:
        sock.setblocking(False)
        if m.protocol == "tcp":
            await asyncio.start_server(_tcp_handler(target, m.container_port), sock=sock)
        else:
            await loop.create_datagram_endpoint(
                functools.partial(_UdpListener, target, m.container_port), sock=sock
            )
    await asyncio.Event().wait()


def _tcp_handler(
    target: str, port: int
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(target, port)
        except OSError:
            writer.close()  # nothing listens in the container: the client sees the close
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        for w in (writer, up_writer):
            w.close()

    return handle


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except OSError:
        writer.close()


class _UdpListener(asyncio.DatagramProtocol):
    """One upstream socket per client address, closed after UDP_IDLE seconds idle."""

    def __init__(self, target: str, port: int) -> None:
        self.target = (target, port)
        self.flows: dict[tuple[str, int], _UdpFlow] = {}
        self.transport: asyncio.DatagramTransport | None = None
        self.opening: set[asyncio.Task[None]] = set()  # held: the loop keeps weak references

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # 3.11's is not a subclass

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        flow = self.flows.get(addr)
        if flow is None:
            flow = self.flows[addr] = _UdpFlow(self, addr)
            self.opening.add(task := asyncio.get_running_loop().create_task(flow.open()))
            task.add_done_callback(self.opening.discard)
        flow.send(data)


class _UdpFlow(asyncio.DatagramProtocol):
    def __init__(self, listener: _UdpListener, client: tuple[str, int]) -> None:
        self.listener, self.client = listener, client
        self.pending: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None
        self.idle: asyncio.TimerHandle | None = None

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: self, remote_addr=self.listener.target
            )
        except OSError:
            self.listener.flows.pop(self.client, None)
            return
        for data in self.pending:
            transport.sendto(data)
        self.pending.clear()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # 3.11's is not a subclass
        self._touch()

    def _touch(self) -> None:
        if self.idle is not None:
            self.idle.cancel()
        self.idle = asyncio.get_running_loop().call_later(UDP_IDLE, self.close)

    def close(self) -> None:
        self.listener.flows.pop(self.client, None)
        if self.transport is not None:
            self.transport.close()

    def send(self, data: bytes) -> None:
        if self.transport is None:
            self.pending.append(data)
        else:
            self.transport.sendto(data)
            self._touch()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.listener.transport is not None:
            self.listener.transport.sendto(data, self.client)
        self._touch()

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP port unreachable from the container: the client retries or gives up
