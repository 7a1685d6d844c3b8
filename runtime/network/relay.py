"""The proxy's relay loop (asyncio), run in the proxy process runtime.network.proxy forks:
each TCP connection to a published port is piped both ways, half-closes included, to the
container's address; each UDP client gets an upstream socket of its own, dropped after
UDP_IDLE seconds without traffic."""

from __future__ import annotations

import asyncio
import functools
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import cast

from runtime.network.ports import PortMapping

UDP_IDLE = 90.0  # seconds a UDP flow is kept without traffic (conntrack's default stream)


def serve(bound: Sequence[tuple[PortMapping, socket.socket]], target: str) -> None:
    """Relay the bound sockets to `target` until killed."""
    asyncio.run(_main(bound, target))


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
