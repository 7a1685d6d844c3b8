"""Upload sessions are held by a lease in the database, not by a lock in one host's kernel:
a request on another replica sees the upload busy, and takes it over once the holder's
lease expires (the holder died without releasing it)."""

from __future__ import annotations

import asyncio
import socket

from registry import Config
from registry.db import Database
from registry.leases import Leases
from registry.service.upload_locks import _machine
from tests.api.oci import Client, digest_of


async def test_an_upload_held_elsewhere_is_busy_until_its_lease_expires(
    client: Client, config: Config
) -> None:
    response = await client.post("/v2/leased/blobs/uploads/")
    location = response.headers["Location"]
    assert (await client.patch(location, data=b"abc")).status == 202
    upload_id = location.rsplit("/", 1)[1]
    db = Database(config.database_url)
    try:
        # A replica on another host took the upload and then died: its lease runs out.
        crashed = Leases(db, "other-host:4242:dead")
        assert await crashed.acquire(f"upload:{upload_id}", ttl=1.0) is not None
        busy = await client.patch(location, data=b"def", headers={"Content-Range": "3-5"})
        assert busy.status == 416
        assert busy.headers["Range"] == "0-2"  # nothing written while busy
        await asyncio.sleep(1.2)
        taken = await client.patch(location, data=b"def", headers={"Content-Range": "3-5"})
        assert taken.status == 202
        assert taken.headers["Range"] == "0-5"
        done = await client.put(f"{location}?digest={digest_of(b'abcdef')}")
        assert done.status == 201
        assert await crashed.holder_of(f"upload:{upload_id}") is None  # released after use
    finally:
        await db.dispose()


async def test_a_dead_process_of_this_machine_is_taken_over_at_once(
    client: Client, config: Config
) -> None:
    """A crashed server restarted on the same machine resumes its uploads without waiting
    for the ttl: a holder whose PID (same boot, same PID namespace) has exited is dead."""
    response = await client.post("/v2/restarted/blobs/uploads/")
    location = response.headers["Location"]
    upload_id = location.rsplit("/", 1)[1]
    dead_pid = await _pid_of_finished_process()
    db = Database(config.database_url)
    try:
        dead = Leases(db, f"{socket.gethostname()}:{dead_pid}:{_machine()}:1234abcd")
        assert await dead.acquire(f"upload:{upload_id}", ttl=600) is not None
        taken = await client.patch(location, data=b"abc", headers={"Content-Range": "0-2"})
        assert taken.status == 202, await taken.text()
        alive = Leases(db, f"{socket.gethostname()}:1:{_machine()}:1234abcd")  # init runs
        assert await alive.acquire(f"upload:{upload_id}", ttl=600) is not None
        busy = await client.patch(location, data=b"def", headers={"Content-Range": "3-5"})
        assert busy.status == 416
    finally:
        await db.dispose()


async def _pid_of_finished_process() -> int:
    process = await asyncio.create_subprocess_exec("true")
    await process.wait()
    return process.pid
