"""The failed-login token bucket, in the database on both engines, shared by every process."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from registry.auth.ratelimit import LoginLimiter
from registry.db import Database
from registry.db.models import login_failures


async def test_burst_then_refill(db: Database) -> None:
    limiter = LoginLimiter(db, burst=3, per_minute=6)  # one token every 10 s
    for _ in range(3):
        assert await limiter.retry_after("1.2.3.4", now=100.0) is None
        await limiter.failed("1.2.3.4", now=100.0)
    assert await limiter.retry_after("1.2.3.4", now=100.0) == 10
    assert await limiter.retry_after("1.2.3.4", now=104.0) == 6
    assert await limiter.retry_after("5.6.7.8", now=100.0) is None  # per client address
    assert await limiter.retry_after("1.2.3.4", now=110.0) is None
    await limiter.failed("1.2.3.4", now=110.0)
    assert await limiter.retry_after("1.2.3.4", now=110.0) == 10
    assert await limiter.retry_after("1.2.3.4", now=1000.0) is None  # full again, capped
    for _ in range(3):
        await limiter.failed("1.2.3.4", now=1000.0)
    assert await limiter.retry_after("1.2.3.4", now=1000.0) == 10


async def test_no_refill_means_locked_out(db: Database) -> None:
    limiter = LoginLimiter(db, burst=1, per_minute=0)
    await limiter.failed("a", now=0.0)
    assert await limiter.retry_after("a", now=1e6) == 3600


async def test_processes_share_one_bucket(database_url: str) -> None:
    """Two limiters on their own engines (two workers or replicas), failing at once: the
    burst is spent once between them, not once each."""
    one, two = Database(database_url), Database(database_url)
    try:
        a, b = LoginLimiter(one, burst=4, per_minute=1), LoginLimiter(two, burst=4, per_minute=1)
        await asyncio.gather(*(limiter.failed("9.9.9.9") for limiter in (a, b, a, b)))
        assert await a.retry_after("9.9.9.9") is not None
        assert await b.retry_after("9.9.9.9") is not None
    finally:
        await one.dispose()
        await two.dispose()


async def test_refilled_buckets_are_forgotten(db: Database) -> None:
    limiter = LoginLimiter(db, burst=2, per_minute=60)  # full again after 2 s
    await limiter.failed("old", now=0.0)
    await limiter.failed("new", now=100.0)
    async with db.read() as conn:
        rows = (await conn.execute(select(login_failures.c.client))).scalars().all()
    assert rows == ["new"]
