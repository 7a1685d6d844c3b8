"""Upload sessions are held through their row in the database, not by a lock in one host's
kernel: a request on another replica sees the upload busy, and takes it over once the
holder's hold expires (the holder died without releasing it)."""

from __future__ import annotations

import asyncio
import socket
from datetime import timedelta

from sqlalchemy import select, update

from registry import Config
from registry.db import Database, WriteConnection
from registry.db.models import upload_sessions, utcnow
from registry.holders import _machine
from tests.api.oci import Client, digest_of


async def _hold_as(db: Database, upload_id: str, holder: str | None, ttl: float = 0) -> None:
    """What another request's hold on the upload leaves in the database (None: its release)."""
    expires = None if holder is None else utcnow() + timedelta(seconds=ttl)

    async def work(conn: WriteConnection) -> None:
        held = await conn.execute(
            update(upload_sessions)
            .where(upload_sessions.c.id == upload_id)
            .values(holder=holder, hold_expires_at=expires)
        )
        assert held.rowcount == 1

    await db.transact(work)


async def _started(client: Client, repo: str) -> str:
    """A session with its row: a POST writes nothing, its first PATCH (even empty) does."""
    location = (await client.post(f"/v2/{repo}/blobs/uploads/")).headers["Location"]
    assert (await client.patch(location, data=b"")).status == 202
    return str(location)


async def _holder_of(db: Database, upload_id: str) -> str | None:
    async with db.read() as conn:
        query = select(upload_sessions.c.holder).where(upload_sessions.c.id == upload_id)
        return (await conn.execute(query)).scalar_one_or_none()  # type: ignore[no-any-return]


async def test_an_upload_held_elsewhere_is_busy_until_its_lease_expires(
    client: Client, config: Config
) -> None:
    response = await client.post("/v2/leased/blobs/uploads/")
    location = response.headers["Location"]
    assert (await client.patch(location, data=b"abc")).status == 202
    upload_id = location.rsplit("/", 1)[1]
    db = Database(config.database_url)
    try:
        # A replica on another host took the upload and then died: its hold runs out.
        await _hold_as(db, upload_id, "other-host:4242:dead", ttl=4.0)
        busy = await client.patch(location, data=b"def", headers={"Content-Range": "3-5"})
        assert busy.status == 416  # after waiting UPLOAD_BUSY_WAIT (2 s) for it
        assert busy.headers["Range"] == "0-2"  # nothing written while busy
        await asyncio.sleep(2.5)
        taken = await client.patch(location, data=b"def", headers={"Content-Range": "3-5"})
        assert taken.status == 202
        assert taken.headers["Range"] == "0-5"
        assert await _holder_of(db, upload_id) is None  # released after use
        done = await client.put(f"{location}?digest={digest_of(b'abcdef')}")
        assert done.status == 201
    finally:
        await db.dispose()


async def test_a_request_waits_for_one_that_is_finishing(client: Client, config: Config) -> None:
    """A client whose connection broke mid-chunk asks again while the server still finishes
    the cut-off request: the new request waits for it instead of failing."""
    location = await _started(client, "waiting")
    upload_id = location.rsplit("/", 1)[1]
    db = Database(config.database_url)
    try:
        await _hold_as(db, upload_id, "this-host:1:finishing:req", ttl=30)

        async def finish() -> None:
            await asyncio.sleep(0.5)
            await _hold_as(db, upload_id, None)

        finished = asyncio.create_task(finish())
        taken = await client.patch(location, data=b"abc", headers={"Content-Range": "0-2"})
        await finished
        assert taken.status == 202, await taken.text()
    finally:
        await db.dispose()


async def test_a_dead_process_of_this_machine_is_taken_over_at_once(
    client: Client, config: Config
) -> None:
    """A crashed server restarted on the same machine resumes its uploads without waiting
    for the ttl: a holder whose PID (same boot, same PID namespace) has exited is dead."""
    location = await _started(client, "restarted")
    upload_id = location.rsplit("/", 1)[1]
    dead_pid = await _pid_of_finished_process()
    db = Database(config.database_url)
    try:
        dead = f"{socket.gethostname()}:{dead_pid}:{_machine()}:1234abcd"
        await _hold_as(db, upload_id, dead, ttl=600)
        taken = await client.patch(location, data=b"abc", headers={"Content-Range": "0-2"})
        assert taken.status == 202, await taken.text()
        alive = f"{socket.gethostname()}:1:{_machine()}:1234abcd"  # init runs
        await _hold_as(db, upload_id, alive, ttl=600)
        busy = await client.patch(location, data=b"def", headers={"Content-Range": "3-5"})
        assert busy.status == 416
    finally:
        await db.dispose()


async def _pid_of_finished_process() -> int:
    process = await asyncio.create_subprocess_exec("true")
    await process.wait()
    return process.pid
