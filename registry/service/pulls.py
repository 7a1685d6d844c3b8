"""When manifests were last pulled: noted in memory on GET, written in batches off the
response path.

`saw()` is all a manifest GET costs: a dict look-up, and a dict insert at most once a minute
per manifest in this process. `run()` writes what was noted every few seconds in one
transaction; the upsert only moves `pulled_at` when the stored time is a minute old, so the
row changes at most once a minute per manifest however many workers and replicas note it.
Pulls noted but not yet written when a process dies are lost: the time is a hint, not a log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import bindparam, select
from sqlalchemy.exc import SQLAlchemyError

from registry.db import Database, WriteConnection, upsert
from registry.db.models import manifest_pulls, manifests, repositories, utcnow

log = logging.getLogger(__name__)

EVERY: Final = 60.0  # seconds: at most one write per manifest in this window
FLUSH_INTERVAL: Final = 5.0

# FOR KEY SHARE (PostgreSQL; SQLite's writers are serialized anyway): a manifest garbage
# collection deletes between this look-up and the insert would fail the insert's foreign key.
_MANIFEST_ID = (
    select(manifests.c.id)
    .join(repositories, repositories.c.id == manifests.c.repository_id)
    .where(repositories.c.name == bindparam("repo"), manifests.c.digest == bindparam("digest"))
    .with_for_update(read=True, key_share=True, of=manifests)
)


class PullRecorder:
    def __init__(
        self,
        db: Database,
        *,
        every: float = EVERY,
        flush_interval: float = FLUSH_INTERVAL,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._db = db
        self._window = timedelta(seconds=every)
        self._flush_interval = flush_interval
        self._clock = clock
        self._noted: dict[tuple[str, str], datetime] = {}  # (repo, digest) -> when
        self._pending: dict[tuple[str, str], datetime] = {}

    def saw(self, repo: str, digest: str) -> None:
        """Note a pull of `repo@digest`; cheap enough for every manifest GET."""
        key = (repo, digest)
        now = self._clock()
        last = self._noted.get(key)
        if last is not None and now - last < self._window:
            return
        self._noted[key] = now
        self._pending[key] = now

    @property
    def pending(self) -> int:
        """Pulls noted and not yet written."""
        return len(self._pending)

    async def flush(self) -> None:
        """Write the pulls noted since the last flush, in one transaction."""
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        cutoff = self._clock() - self._window
        self._noted = {k: t for k, t in self._noted.items() if t > cutoff}
        window = self._window

        async def work(conn: WriteConnection) -> None:
            for (repo, digest), when in batch.items():
                found = await conn.execute(_MANIFEST_ID, {"repo": repo, "digest": digest})
                manifest_id = found.scalar_one_or_none()
                if manifest_id is None:  # deleted since
                    continue
                await conn.execute(
                    upsert(
                        conn,
                        manifest_pulls,
                        ["manifest_id"],
                        {"manifest_id": manifest_id, "pulled_at": when},
                        where=manifest_pulls.c.pulled_at < when - window,
                    )
                )

        try:
            await self._db.transact(work)
        except SQLAlchemyError:
            log.warning("could not record %d manifest pull(s)", len(batch), exc_info=True)

    async def run(self) -> None:
        """Flush every few seconds until cancelled (then call `flush` once more)."""
        while True:
            await asyncio.sleep(self._flush_interval)
            await self.flush()
