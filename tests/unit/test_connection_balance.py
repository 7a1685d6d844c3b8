"""The acceptor of registry.connection_balance in one process, with another worker's count
written into the shared slots by the test."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest

from registry.connection_balance import Acceptor, ConnectionCounts


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


@pytest.fixture
def listening() -> Iterator[socket.socket]:
    sock = socket.create_server(("127.0.0.1", 0))
    try:
        yield sock
    finally:
        sock.close()


async def _echoed(port: int) -> float:
    """Seconds from connecting to the first echo."""
    start = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"ping")
    assert await asyncio.wait_for(reader.readexactly(4), 5) == b"ping"
    elapsed = time.monotonic() - start
    writer.close()
    return elapsed


async def test_a_busier_worker_still_takes_a_connection_nobody_else_takes(
    listening: socket.socket,
) -> None:
    served: list[_Echo] = []

    def factory() -> _Echo:
        protocol = _Echo()
        served.append(protocol)
        return protocol

    counts = ConnectionCounts(2)  # slot 1: a worker that serves nothing and never accepts
    acceptor = Acceptor(listening, factory, lambda: len(served), counts=counts, slot=0)
    acceptor.start()
    port = listening.getsockname()[1]
    try:
        first = await _echoed(port)  # the least busy (a tie): taken at once
        later = [await _echoed(port) for _ in range(3)]  # busier: left 2 ms, then taken
    finally:
        acceptor.close()
    assert len(served) == 4
    assert first < 1
    assert all(0.0019 <= elapsed < 1 for elapsed in later), later  # deferred, not refused


async def test_the_count_is_published_and_a_gone_worker_slot_reset(
    listening: socket.socket,
) -> None:
    counts = ConnectionCounts(2)
    counts.publish(1, 7)
    open_ones = [3]
    acceptor = Acceptor(listening, asyncio.Protocol, lambda: open_ones[0], counts=counts, slot=0)
    acceptor.start()
    try:
        assert counts.fewest() == 3  # published at start
        open_ones[0] = 9
        await asyncio.sleep(0.2)  # the count is published again a few times a second
        assert counts.fewest() == 7
        counts.reset(1)
        assert counts.fewest() == 0
    finally:
        acceptor.close()
