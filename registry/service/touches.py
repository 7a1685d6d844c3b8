"""Blob touches: a HEAD that finds a blob tells garbage collection the blob is wanted.

A client that HEADs a layer, finds it and skips the upload will reference it in its next
manifest PUT; the collector keeps blobs touched within its grace period. Touches are written
off the response path, at most once a minute per blob: the handler only notes the digest and
wakes a background task, which writes whatever was noted meanwhile in one statement.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Final

from sqlalchemy import or_, update

from registry.db import Database, WriteConnection
from registry.db.models import blobs, utcnow

log = logging.getLogger(__name__)

EVERY: Final = 60.0  # seconds between two recorded touches of one blob
_REMEMBERED: Final = 65536  # digests whose last touch this process remembers
_BATCH: Final = 500


class TouchRecorder:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._recent: dict[str, float] = {}
        self._pending: set[str] = set()
        self._wake = asyncio.Event()
        self._flushing = asyncio.Lock()

    def touch(self, digest: str) -> None:
        """Note that `digest` was found; cheap, never waits."""
        now = time.monotonic()
        last = self._recent.get(digest)
        if last is not None and now - last < EVERY:
            return
        if len(self._recent) >= _REMEMBERED:
            self._recent.clear()
        self._recent[digest] = now
        self._pending.add(digest)
        self._wake.set()

    async def flush(self) -> None:
        """Write the noted touches (skipping blobs another process touched this minute);
        returns once everything noted before the call is written."""
        async with self._flushing:
            while self._pending:
                batch = [self._pending.pop() for _ in range(min(_BATCH, len(self._pending)))]
                await self._db.transact(lambda conn, batch=batch: _record(conn, batch))  # type: ignore[misc]  # default binds the loop variable

    async def run(self) -> None:
        """Flush whenever something was noted, until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                log.exception("recording blob touches failed")


async def _record(conn: WriteConnection, digests: list[str]) -> None:
    now = utcnow()
    stale = now - timedelta(seconds=EVERY)
    await conn.execute(
        update(blobs)
        .where(
            blobs.c.digest.in_(digests),
            or_(blobs.c.touched_at.is_(None), blobs.c.touched_at < stale),
        )
        .values(touched_at=now)
    )
