"""Leases on SQLite and PostgreSQL: exclusivity, expiry, takeover fencing, leadership."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from registry.db import Database
from registry.leases import Lease, LeaseBusy, LeaseLost, Leases, holds, run_as_leader


async def test_one_holder_at_a_time(db: Database) -> None:
    a, b = Leases(db, "a"), Leases(db, "b")
    first = await a.acquire("gc", ttl=30)
    assert first is not None
    assert await b.acquire("gc", ttl=30) is None
    again = await a.acquire("gc", ttl=30)
    assert again == first  # a renewal keeps the generation
    await a.release("gc")
    taken = await b.acquire("gc", ttl=30)
    assert taken is not None
    assert await b.holder_of("gc") == "b"


async def test_expired_lease_is_taken_over_and_old_holder_fenced(db: Database) -> None:
    a, b = Leases(db, "a"), Leases(db, "b")
    old = await a.acquire("upload:1", ttl=0.05)
    assert old is not None
    await asyncio.sleep(0.1)
    new = await b.acquire("upload:1", ttl=30)
    assert new is not None
    assert new.generation == old.generation + 1
    async with db.read() as conn:
        assert not await holds(conn, old)
        assert await holds(conn, new)
    await a.release("upload:1")  # not a's any more: a no-op
    assert await b.holder_of("upload:1") == "b"


async def test_hold_raises_busy_and_releases(db: Database) -> None:
    a, b = Leases(db, "a"), Leases(db, "b")
    async with a.hold("fetch:x", ttl=30):
        with pytest.raises(LeaseBusy) as busy:
            async with b.hold("fetch:x", ttl=30):
                pass
        assert busy.value.holder == "a"
    async with b.hold("fetch:x", ttl=30):
        assert await a.holder_of("fetch:x") == "b"


async def test_hold_renews_past_its_ttl(db: Database) -> None:
    a, b = Leases(db, "a"), Leases(db, "b")
    async with a.hold("long", ttl=0.3):
        await asyncio.sleep(0.8)
        assert await b.acquire("long", ttl=30) is None


async def test_lost_lease_cancels_the_body(db: Database) -> None:
    a, b = Leases(db, "a"), Leases(db, "b")
    taken = asyncio.Event()

    async def stall() -> None:
        async with a.hold("stolen", ttl=0.3) as lease:
            held.append(lease)
            # A stall past the ttl: b takes over while a's renewals are late.
            await a.release("stolen")
            assert await b.acquire("stolen", ttl=30) is not None
            taken.set()
            await asyncio.sleep(5)

    held: list[Lease] = []
    with pytest.raises(LeaseLost):
        await stall()
    assert taken.is_set()
    lease = held[0]
    async with db.read() as conn:
        assert not await holds(conn, lease)


async def test_one_leader_and_failover(db: Database) -> None:
    running: list[str] = []

    def job(name: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            running.append(name)
            await asyncio.Event().wait()

        return run

    first = asyncio.create_task(run_as_leader(Leases(db, "r1"), "leader", job("r1"), ttl=0.3))
    await asyncio.sleep(0.2)
    second = asyncio.create_task(run_as_leader(Leases(db, "r2"), "leader", job("r2"), ttl=0.3))
    await asyncio.sleep(0.5)
    assert running == ["r1"]
    first.cancel()  # r1 dies; its lease is released on the way out, or expires
    await asyncio.gather(first, return_exceptions=True)
    for _ in range(50):
        if running == ["r1", "r2"]:
            break
        await asyncio.sleep(0.05)
    assert running == ["r1", "r2"]
    second.cancel()
    await asyncio.gather(second, return_exceptions=True)
