"""Upload sessions are held by a lease in the database, not by a lock in one host's kernel:
a request on another replica sees the upload busy, and takes it over once the holder's
lease expires (the holder died without releasing it)."""

from __future__ import annotations

import asyncio

from registry import Config
from registry.db import Database
from registry.leases import Leases
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
