"""Spreading connections evenly over the worker processes that share one listening socket.

Every worker waits on the one listening socket; the kernel wakes them all for a connection, and
the first to run accepts all it can. Keep-alive connections (a CI push, a client's pool) then
stay where they landed: on two workers, 16 connections opened one after the other split 16/0
or 11/5 as often as 8/8, and 5 bursts of 16 in 12 split 13/3 or worse. One worker's clients
then queue while the other's core idles: 4 KiB pushes over 16 connections made 455-645
blobs/s in runs split 13/3 to 15/1, against 675-905 in runs split 10/6 to 8/8.

Each worker publishes how many connections it serves in a slot of memory the parent mapped
before forking (`ConnectionCounts`). A worker serving more than the least busy one leaves a
waiting connection to the others for `_DEFER` seconds, then takes it itself: no connection
waits long on a worker that is slow to accept, and a dead worker's stale count costs no more
than that moment. The listening socket stays one: a restarted worker inherits it, and no
connection waits in the backlog of a worker that is gone.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import mmap
import socket
import ssl
from collections.abc import Callable
from typing import Final

log = logging.getLogger(__name__)

_DEFER: Final = 0.002  # seconds a busier worker leaves a waiting connection to the others
_REFRESH: Final = 0.05  # seconds between publications of this worker's count (closes)
_PAUSE_ON_LIMIT: Final = 0.5  # seconds without accepting after EMFILE and the like
_COUNT_BYTES: Final = 8


class ConnectionCounts:
    """One counter per worker slot, in an anonymous mapping shared by the processes forked
    after it was made."""

    def __init__(self, slots: int) -> None:
        self._map = mmap.mmap(-1, max(slots, 1) * _COUNT_BYTES)
        self._counts = memoryview(self._map).cast("q")

    def publish(self, slot: int, count: int) -> None:
        self._counts[slot] = count

    def fewest(self) -> int:
        return min(self._counts)

    def reset(self, slot: int) -> None:
        """A slot's worker is gone: its replacement starts from nothing."""
        self._counts[slot] = 0


class Acceptor:
    """Accepts connections on `sock` for `protocol_factory` (an aiohttp web.Server), deferring
    to less busy workers when `counts` is given. `served()` says how many connections the
    factory's protocols currently serve."""

    def __init__(
        self,
        sock: socket.socket,
        protocol_factory: Callable[[], asyncio.Protocol],
        served: Callable[[], int],
        *,
        ssl_context: ssl.SSLContext | None = None,
        counts: ConnectionCounts | None = None,
        slot: int = 0,
    ) -> None:
        self._sock = sock
        self._factory = protocol_factory
        self._served = served
        self._ssl = ssl_context
        self._counts = counts
        self._slot = slot
        self._loop = asyncio.get_running_loop()
        self._connecting: set[asyncio.Task[None]] = set()  # accepted, not yet served (TLS)
        self._overdue_until = 0.0  # loop time until which a waiting connection was left over
        self._reading = False
        self._timer: asyncio.TimerHandle | None = None
        self._refresher: asyncio.TimerHandle | None = None
        self._closed = False

    def start(self) -> None:
        self._sock.setblocking(False)
        self._listen()
        if self._counts is not None:
            self._refresh()

    def close(self) -> None:
        """Stop accepting; connections already accepted are the web server's to close."""
        self._closed = True
        self._unlisten()
        for handle in (self._timer, self._refresher):
            if handle is not None:
                handle.cancel()
        for task in self._connecting:
            task.cancel()

    def _publish(self, counts: ConnectionCounts) -> int:
        count = self._served() + len(self._connecting)
        counts.publish(self._slot, count)
        return count

    def _refresh(self) -> None:
        assert self._counts is not None
        self._publish(self._counts)
        self._refresher = self._loop.call_later(_REFRESH, self._refresh)

    def _listen(self) -> None:
        if not self._reading and not self._closed:
            self._loop.add_reader(self._sock.fileno(), self._accept_waiting)
            self._reading = True

    def _unlisten(self) -> None:
        if self._reading:
            self._loop.remove_reader(self._sock.fileno())
            self._reading = False

    def _later(self, delay: float, then: Callable[[], None]) -> None:
        self._unlisten()
        self._timer = self._loop.call_later(delay, then)

    def _after_deferring(self) -> None:
        # What still waits now was left to the others for long enough: take it. A connection
        # arriving later is deferred again.
        self._overdue_until = self._loop.time() + _DEFER
        self._listen()

    def _accept_waiting(self) -> None:
        counts = self._counts
        while True:
            # Alone (no counts), a worker takes every connection without counting its own.
            busier = counts is not None and self._publish(counts) > counts.fewest()
            if busier and self._loop.time() >= self._overdue_until:
                self._later(_DEFER, self._after_deferring)
                return
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return  # another worker took it
            except OSError as exc:
                if exc.errno == errno.ECONNABORTED:
                    continue
                # Out of descriptors or buffers: the connections wait in the backlog.
                log.warning("cannot accept connections for now: %s", exc)
                self._later(_PAUSE_ON_LIMIT, self._listen)
                return
            self._overdue_until = 0.0
            conn.setblocking(False)
            task = self._loop.create_task(self._serve(conn))
            self._connecting.add(task)
            task.add_done_callback(self._connecting.discard)

    async def _serve(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._factory, conn, ssl=self._ssl)
        except asyncio.CancelledError:
            conn.close()
            raise
        except (OSError, ssl.SSLError, TimeoutError) as exc:  # a failed TLS handshake, a reset
            log.debug("connection dropped before it was served: %s", exc)
            conn.close()
