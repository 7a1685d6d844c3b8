"""One upstream fetch per thing, however many requests, workers and replicas ask for it.

Within a process, concurrent callers of `run(key, ...)` share one task. Across processes the
task first takes the database lease `key` (registry.leases): the holder does the work; the
others poll `done()` (the database or the blobstore) with backoff until what the holder makes
is there, and take the work over themselves when the lease is released or expires without
it (its holder failed or died). The task belongs to no request: a client that goes away
does not cancel a fetch that others wait for.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final, Generic, TypeVar

from registry.errcode import UPSTREAM_TIMEOUT, RegistryError
from registry.leases import LeaseBusy, LeaseLost, Leases

log = logging.getLogger(__name__)

T = TypeVar("T")

LEASE_TTL: Final = 30.0  # renewed every ttl/3 while the holder works
WAIT_LIMIT: Final = 600.0  # seconds a waiter waits for another process's fetch
_FIRST_POLL: Final = 0.02
_MAX_POLL: Final = 0.5


class SingleFlight(Generic[T]):
    def __init__(self, leases: Leases, *, wait_limit: float = WAIT_LIMIT) -> None:
        self._leases = leases
        self._wait_limit = wait_limit
        self._running: dict[str, asyncio.Task[T]] = {}

    async def run(
        self,
        key: str,
        work: Callable[[], Awaitable[T]],
        done: Callable[[], Awaitable[T | None]],
    ) -> T:
        """`work()`'s result, from this call or one already running for `key`, here or in
        another process (then `done()`'s, once it returns something other than None)."""
        task = self._running.get(key)
        if task is None:
            task = asyncio.create_task(self._lead(key, work, done), name=f"single-flight {key}")
            self._running[key] = task
            task.add_done_callback(lambda _: self._forget(key, task))
        return await asyncio.shield(task)

    def _forget(self, key: str, task: asyncio.Task[T]) -> None:
        if self._running.get(key) is task:
            del self._running[key]
        if not task.cancelled():
            task.exception()  # retrieved: a failure nobody waits for any more is not logged

    async def _lead(
        self,
        key: str,
        work: Callable[[], Awaitable[T]],
        done: Callable[[], Awaitable[T | None]],
    ) -> T:
        deadline = time.monotonic() + self._wait_limit
        delay = _FIRST_POLL
        while True:
            try:
                async with self._leases.hold(key, LEASE_TTL):
                    # A holder that finished just before we took the lease leaves its result.
                    found = await done()
                    return found if found is not None else await work()
            except LeaseBusy:
                pass
            except LeaseLost:
                log.warning("lost the lease %s mid-fetch; waiting for its new holder", key)
            # Another process is at it: wait for its result, or for its lease to go.
            while True:
                found = await done()
                if found is not None:
                    return found
                if time.monotonic() > deadline:
                    raise RegistryError(UPSTREAM_TIMEOUT, detail={"waiting_for": key})
                if await self._leases.holder_of(key) is None:
                    break  # released or expired without a result: take it over
                await asyncio.sleep(delay)
                delay = min(delay * 2, _MAX_POLL)

    async def stop(self) -> None:
        """Cancel what is running (app shutdown) and wait for it."""
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=10)
