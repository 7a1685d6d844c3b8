"""Ingests of one-request uploads orphaned by a crash are purged by age, like upload sessions;
the ingests of live sessions are left to session purging."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from datetime import timedelta
from pathlib import Path

import pytest

from blobstore import FilesystemBlobStore
from registry import Config
from registry.db import Database
from registry.service.purge import purge_orphaned_ingests
from tests.api.oci import Client
from tests.support.server import start_berth


def _age(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


async def test_orphaned_ingests_are_purged_by_age(client: Client, config: Config) -> None:
    store = FilesystemBlobStore(config.blob_root)
    ingest = config.blob_root / "ingest"
    orphan = await store.begin()  # what a crash mid-POST ?digest= leaves: no session row
    await orphan.write(b"half a layer")
    await orphan.close()
    _age(ingest / orphan.id, 3600)
    recent = await store.begin()
    await recent.close()
    started = await client.post("/v2/app/blobs/uploads/")
    session_id = started.headers["Docker-Upload-UUID"]
    assert (await client.patch(started.headers["Location"], data=b"chunk")).status == 202
    _age(ingest / session_id, 3600)  # idle too, but a session owns it

    db = Database(config.database_url)
    try:
        hour = timedelta(minutes=30)
        found = await purge_orphaned_ingests(db, store, older_than=hour, dry_run=True)
        assert found == [orphan.id]
        assert (ingest / orphan.id).exists()
        purged = await purge_orphaned_ingests(db, store, older_than=hour)
    finally:
        await db.dispose()
    assert purged == [orphan.id]
    assert sorted(os.listdir(ingest)) == sorted([recent.id, session_id])
    status = await client.get(started.headers["Location"])
    assert status.status == 204
    assert status.headers["Range"] == "0-4"


@pytest.mark.e2e
def test_ingest_of_a_crashed_one_request_upload_is_purged(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = start_berth(data_dir)
    data = os.urandom(1 << 20)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    host, port = server.host.split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            f"POST /v2/crash/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: x\r\n"
            f"Content-Length: {len(data)}\r\n\r\n".encode()
            + data[: len(data) // 2]
        )
        deadline = time.monotonic() + 10
        while not os.listdir(data_dir / "ingest"):
            assert time.monotonic() < deadline, "the upload never reached the ingest"
            time.sleep(0.05)
        server.kill()
    [orphan] = os.listdir(data_dir / "ingest")
    _age(data_dir / "ingest" / orphan, 120)
    env = {
        "BERTH_STORAGE_MAINTENANCE_UPLOADPURGING_AGE": "60s",
        "BERTH_STORAGE_MAINTENANCE_UPLOADPURGING_INTERVAL": "1s",
    }
    server = start_berth(data_dir, port=int(port), env=env)
    try:
        # Purging runs on the leader; the killed server's lease lapses after its ttl (30 s).
        deadline = time.monotonic() + 75
        while (data_dir / "ingest" / orphan).exists():
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.1)
    finally:
        server.stop()
    assert "purged 1 orphaned ingest(s)" in server.log()


async def test_purging_forgets_ended_uploads_once_their_ids_have_expired(
    client: Client, config: Config
) -> None:
    """An ended upload's row, which keeps its id from starting it anew, is kept only while
    the id could."""
    from sqlalchemy import select

    from registry.db.models import upload_sessions
    from registry.service.purge import purge_uploads
    from registry.service.upload_locks import UploadLocks

    started = await client.post("/v2/ended/blobs/uploads/")
    assert (await client.delete(started.headers["Location"])).status == 204
    db = Database(config.database_url)
    store = FilesystemBlobStore(config.blob_root)
    query = select(upload_sessions.c.id).where(upload_sessions.c.ended_at.is_not(None))
    try:
        await purge_uploads(db, store, UploadLocks(db), older_than=timedelta(hours=1))
        async with db.read() as conn:
            assert list((await conn.execute(query)).scalars()) == [
                started.headers["Docker-Upload-UUID"]
            ]
        await purge_uploads(db, store, UploadLocks(db), older_than=timedelta(0))
        async with db.read() as conn:
            assert list((await conn.execute(query)).scalars()) == []
    finally:
        await db.dispose()
