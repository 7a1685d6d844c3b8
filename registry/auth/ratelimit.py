"""Failed-login throttling: a token bucket per client address, kept in the database.

Each failed login takes one token; a bucket refills at `per_minute` tokens a minute up to
`burst`. While a client's bucket is empty, every login attempt from it (right or wrong) is
refused with a Retry-After, so guessing passwords costs time. The buckets are rows of
`login_failures`, so N worker processes or replicas allow one burst between them, not N.
A full bucket is no row at all: rows that have refilled are deleted as failures come in.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from sqlalchemy import delete, select, update

from registry.db import Database, WriteConnection, insert_ignore
from registry.db.models import login_failures

__all__ = ["LoginLimiter"]


@dataclass(frozen=True, slots=True)
class LoginLimiter:
    db: Database
    burst: int = 10
    per_minute: float = 10.0

    def _refilled(self, tokens: float, at: float, now: float) -> float:
        return min(float(self.burst), tokens + max(0.0, now - at) * self.per_minute / 60.0)

    async def retry_after(self, client: str, now: float | None = None) -> int | None:
        """Seconds until `client` may try again, or None if it may try now."""
        now = time.time() if now is None else now
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(login_failures.c.tokens, login_failures.c.at).where(
                        login_failures.c.client == client
                    )
                )
            ).first()
        if row is None:
            return None
        tokens = self._refilled(row.tokens, row.at, now)
        if tokens >= 1.0:
            return None
        if self.per_minute <= 0:
            return 3600
        return max(1, math.ceil((1.0 - tokens) * 60.0 / self.per_minute))

    async def failed(self, client: str, now: float | None = None) -> None:
        """Take a token from `client`'s bucket (one write transaction, so concurrent
        failures on other replicas each take their own)."""
        at = time.time() if now is None else now

        async def work(conn: WriteConnection) -> None:
            # A full bucket first, then the row locked (PostgreSQL) or the database (SQLite):
            # two first failures at once each take a token.
            await conn.execute(
                insert_ignore(conn, login_failures, ["client"]).values(
                    client=client, tokens=float(self.burst), at=at
                )
            )
            row = (
                await conn.execute(
                    select(login_failures.c.tokens, login_failures.c.at)
                    .where(login_failures.c.client == client)
                    .with_for_update()
                )
            ).one()
            tokens = max(0.0, self._refilled(row.tokens, row.at, at) - 1.0)
            await conn.execute(
                update(login_failures)
                .where(login_failures.c.client == client)
                .values(tokens=tokens, at=max(at, row.at))
            )
            if self.per_minute > 0:
                full_again = at - self.burst * 60.0 / self.per_minute
                await conn.execute(delete(login_failures).where(login_failures.c.at < full_again))

        await self.db.transact(work)
