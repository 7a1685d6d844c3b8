"""Pull events, kept off the response path: noted in memory, written to the outbox in batches.

A pull changes nothing, so unlike a push its event need not commit with anything. A GET only
notes it here (a dict lookup); the app's background task writes the batch once a second in one
transaction, and any other event's transaction writes what is pending first, so that a pull
is never delivered after a later push or delete that this process recorded. A repeated pull of
one object by one user within a minute is one event, as the issue's rule for per-read records
asks: a CI fleet pulling a base image thousands of times a minute does not fill the outbox.
A crash loses at most the last second's pull events (Distribution keeps all of its events in
memory).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Final

from sqlalchemy import insert
from sqlalchemy.exc import SQLAlchemyError

from registry.db import Database, WriteConnection
from registry.db.models import webhook_outbox

log = logging.getLogger(__name__)

WINDOW: Final = 60.0  # seconds in which a repeated pull of one object is one event
FLUSH_INTERVAL: Final = 1.0
_INSERT: Final = insert(webhook_outbox)


class PullEvents:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._noted: dict[tuple[str, str, str], float] = {}  # (repo, digest, user) -> when
        self._rows: list[dict[str, Any]] = []

    def seen(self, repo: str, digest: str, user: str) -> bool:
        """True if this pull was noted within the window (then it is no new event)."""
        key = (repo, digest, user)
        now = self._clock()
        last = self._noted.get(key)
        if last is not None and now - last < WINDOW:
            return True
        self._noted[key] = now
        return False

    def add(self, rows: list[dict[str, Any]]) -> None:
        self._rows.extend(rows)

    @property
    def pending(self) -> int:
        return len(self._rows)

    async def write(self, conn: WriteConnection) -> None:
        """Write the pending events in the caller's transaction (before its own events)."""
        if not self._rows:
            return
        rows, self._rows = self._rows, []
        await conn.execute(_INSERT, rows)

    async def flush(self, db: Database) -> None:
        cutoff = self._clock() - WINDOW
        self._noted = {k: t for k, t in self._noted.items() if t > cutoff}
        if not self._rows:
            return
        rows = len(self._rows)
        try:
            await db.transact(self.write)
        except SQLAlchemyError:
            log.warning("could not write %d pull event(s) to the outbox", rows, exc_info=True)

    async def run(self, db: Database, interval: float = FLUSH_INTERVAL) -> None:
        """Flush every `interval` seconds until cancelled (then call `flush` once more)."""
        while True:
            await asyncio.sleep(interval)
            await self.flush(db)
