"""Exclusive per-upload holds that every worker process and every replica sees.

Two requests must never append to one upload at once (a client retrying a chunk whose first
attempt is still in flight would otherwise get both appended). Each request that writes to an
upload holds the lease `upload:<id>` (registry.leases) for as long as it writes, renewing it
while alive. A replica that dies mid-chunk stops renewing, and after `ttl` seconds another
replica may take the upload over: the client's next request (GET for the offset, then PATCH
or PUT) finds it free.

A holder that was a process of this very machine and is no longer running is known dead
(registry.holders), so its lease is released at once instead of waiting for the ttl: a
server restarted after a crash resumes its uploads immediately, as it did with flock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

from registry.db import Database, WriteConnection
from registry.holders import holder_name, known_dead
from registry.leases import LeaseBusy, LeaseLost, Leases

UPLOAD_LEASE_TTL: Final = 15.0  # seconds a crashed replica's upload stays locked
UPLOAD_BUSY_WAIT: Final = 2.0  # seconds a request waits for another to finish with the upload


class UploadBusy(Exception):
    """Another request holds the upload."""

    def __init__(self, upload_id: str) -> None:
        super().__init__(f"upload {upload_id} is being written by another request")
        self.upload_id = upload_id


class UploadHold:
    """A request's hold on one upload. Its last transaction may give the hold up too
    (`release_in`, then `released` once committed), saving a transaction of its own."""

    def __init__(self, leases: Leases, name: str) -> None:
        self._leases = leases
        self._name = name

    async def release_in(self, conn: WriteConnection) -> None:
        await self._leases.release_in(conn, self._name)

    def released(self) -> None:
        self._leases.let_go(self._name)


class UploadLocks:
    def __init__(
        self, db: Database, ttl: float = UPLOAD_LEASE_TTL, wait: float = UPLOAD_BUSY_WAIT
    ) -> None:
        self._db = db
        self._ttl = ttl
        self._wait = wait

    @contextlib.asynccontextmanager
    async def hold(
        self, upload_id: str, also: Callable[[WriteConnection], Awaitable[None]] | None = None
    ) -> AsyncIterator[UploadHold]:
        """Hold the upload, or raise UploadBusy if another request keeps it for longer than
        `wait` seconds (or took it over from this one, which stalled past the ttl). `also`
        runs in the transaction that takes the hold (see Leases.hold)."""
        name = f"upload:{upload_id}"
        # The holder is this request, not the process: two requests of one process exclude
        # each other too.
        leases = Leases(self._db, holder_name())
        try:
            async with contextlib.AsyncExitStack() as stack:
                await self._take(stack, leases, name, also)
                yield UploadHold(leases, name)
        except (LeaseBusy, LeaseLost):
            raise UploadBusy(upload_id) from None

    async def _take(
        self,
        stack: contextlib.AsyncExitStack,
        leases: Leases,
        name: str,
        also: Callable[[WriteConnection], Awaitable[None]] | None,
    ) -> None:
        # A client that lost its connection mid-chunk often asks again before the server has
        # finished with the cut-off request: give that request a moment to let go.
        loop = asyncio.get_running_loop()
        deadline, delay = loop.time() + self._wait, 0.02
        while True:
            try:
                await stack.enter_async_context(leases.hold(name, self._ttl, also=also))
                return
            except LeaseBusy as busy:
                if busy.holder is not None and known_dead(busy.holder):
                    await Leases(self._db, busy.holder).release(name)  # the dead one's only
                elif loop.time() + delay > deadline:
                    raise
                else:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 0.25)
