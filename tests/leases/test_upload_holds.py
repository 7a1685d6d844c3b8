"""Upload holds (registry.service.upload_locks) on SQLite and PostgreSQL: one request at a
time, renewed while the request runs, taken over after the ttl, fenced when taken over."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from registry.db import Database, WriteConnection
from registry.db.models import upload_sessions, utcnow
from registry.service.repos import ensure_repository
from registry.service.upload_locks import UploadBusy, UploadGone, UploadLocks

UPLOAD = "0123456789abcdef0123456789abcdef"


async def _session(db: Database, repo: str = "holds") -> None:
    async def work(conn: WriteConnection) -> None:
        repo_id = await ensure_repository(conn, repo)
        now = utcnow()
        await conn.execute(
            upload_sessions.insert().values(
                id=UPLOAD, repository_id=repo_id, started_at=now, updated_at=now
            )
        )

    await db.transact(work)


async def test_one_request_at_a_time_and_released_after(db: Database) -> None:
    await _session(db)
    locks = UploadLocks(db, wait=0.1)
    async with locks.hold(UPLOAD, "holds") as hold:
        assert hold.repository_id > 0
        with pytest.raises(UploadBusy):
            async with locks.hold(UPLOAD, "holds"):
                pass
    async with locks.hold(UPLOAD, "holds"):
        pass


async def test_unknown_upload_or_other_repository_is_gone(db: Database) -> None:
    await _session(db)
    await _session_free(db)
    locks = UploadLocks(db, wait=0.1)
    with pytest.raises(UploadGone):
        async with locks.hold(UPLOAD, "another"):
            pass
    with pytest.raises(UploadGone):
        async with locks.hold("f" * 32):
            pass


async def _session_free(db: Database) -> None:
    async def work(conn: WriteConnection) -> None:
        await ensure_repository(conn, "another")

    await db.transact(work)


async def test_a_long_request_keeps_its_hold_by_renewing(db: Database) -> None:
    await _session(db)
    locks = UploadLocks(db, ttl=0.3, wait=0.05)
    async with locks.hold(UPLOAD, "holds"):
        await asyncio.sleep(0.8)  # past two ttls: renewed meanwhile
        with pytest.raises(UploadBusy):
            async with locks.hold(UPLOAD, "holds"):
                pass


async def test_a_request_taken_over_is_cut_off(db: Database) -> None:
    """A request whose hold another replica took over (it stalled past the ttl) finds out
    at its next renewal: its body is cancelled and the hold ends in UploadBusy, leaving the
    other replica's hold alone."""
    await _session(db)
    stalled = UploadLocks(db, ttl=0.3, wait=0.05)
    entered = asyncio.Event()

    async def stall() -> None:
        async with stalled.hold(UPLOAD, "holds"):
            entered.set()
            await asyncio.sleep(10)  # cut off at the next renewal, well before this ends

    task = asyncio.create_task(stall())
    await entered.wait()
    other = "other-host:4242:0123456789abcdef:1"
    expires = utcnow() + timedelta(seconds=30)
    await db.transact(
        lambda conn: conn.execute(
            update(upload_sessions)
            .where(upload_sessions.c.id == UPLOAD)
            .values(holder=other, hold_expires_at=expires)
        )
    )
    with pytest.raises(UploadBusy):
        await asyncio.wait_for(task, 5)
    async with db.read() as conn:
        query = select(upload_sessions.c.holder).where(upload_sessions.c.id == UPLOAD)
        assert (await conn.execute(query)).scalar_one() == other


async def test_the_hold_is_taken_with_what_also_does_or_not_at_all(db: Database) -> None:
    await _session(db)
    locks = UploadLocks(db, wait=0.05)

    async def refuse(conn: WriteConnection) -> None:
        raise LookupError("refused")

    with pytest.raises(LookupError):
        async with locks.hold(UPLOAD, "holds", refuse):
            pass
    async with locks.hold(UPLOAD, "holds"):  # free: the refused hold was rolled back
        pass
