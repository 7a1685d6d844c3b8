"""Uploads: monolithic, POST then PUT, chunked PATCH, status, cancel, mount, failures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import ClientResponse

from registry import Config
from tests.api.conftest import ClientFactory
from tests.api.oci import Client, digest_of, error_code, push_blob

EMPTY_DIGEST = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


async def _holds_held(config: Config) -> list[str]:
    """Uploads some request holds (registry.service.upload_locks)."""
    from sqlalchemy import select

    from registry.db import Database
    from registry.db.models import upload_sessions

    db = Database(config.database_url)
    try:
        async with db.read() as conn:
            query = select(upload_sessions.c.id).where(upload_sessions.c.holder.is_not(None))
            return list((await conn.execute(query)).scalars())
    finally:
        await db.dispose()


async def _pins_held(config: Config) -> list[str]:
    from sqlalchemy import select

    from registry.db import Database
    from registry.db.models import blob_pins

    db = Database(config.database_url)
    try:
        async with db.read() as conn:
            return list((await conn.execute(select(blob_pins.c.digest))).scalars())
    finally:
        await db.dispose()


async def _start(client: Client, repo: str) -> str:
    response = await client.post(f"/v2/{repo}/blobs/uploads/")
    assert response.status == 202
    assert response.headers["Range"] == "0-0"
    assert response.headers["Docker-Upload-UUID"]
    location = response.headers["Location"]
    assert location.startswith(f"/v2/{repo}/blobs/uploads/")
    return location


async def test_monolithic_post(client: Client) -> None:
    data = b"monolithic"
    response = await client.post(f"/v2/m/blobs/uploads/?digest={digest_of(data)}", data=data)
    assert response.status == 201
    assert response.headers["Location"] == f"/v2/m/blobs/{digest_of(data)}"
    assert response.headers["Docker-Content-Digest"] == digest_of(data)
    assert await (await client.get(response.headers["Location"])).read() == data


async def test_post_then_put(client: Client, config: Config) -> None:
    data = b"post then put"
    location = await _start(client, "pp")
    response = await client.put(f"{location}?digest={digest_of(data)}", data=data)
    assert response.status == 201
    assert response.headers["Docker-Content-Digest"] == digest_of(data)
    assert await (await client.get(f"/v2/pp/blobs/{digest_of(data)}")).read() == data
    assert list((config.blob_root / "ingest").iterdir()) == []
    assert (await client.get(location)).status == 404


async def test_chunked_upload_with_final_chunk_in_put(client: Client) -> None:
    parts = [b"a" * 1000, b"b" * 2000, b"c" * 10]
    data = b"".join(parts)
    location = await _start(client, "chunks")
    offset = 0
    for part in parts[:2]:
        response = await client.patch(
            location,
            data=part,
            headers={
                "Content-Range": f"{offset}-{offset + len(part) - 1}",
                "Content-Type": "application/octet-stream",
            },
        )
        assert response.status == 202
        offset += len(part)
        assert response.headers["Range"] == f"0-{offset - 1}"
        location = response.headers["Location"]
    response = await client.put(
        f"{location}?digest={digest_of(data)}",
        data=parts[2],
        headers={"Content-Range": f"{offset}-{offset + len(parts[2]) - 1}"},
    )
    assert response.status == 201
    assert await (await client.get(f"/v2/chunks/blobs/{digest_of(data)}")).read() == data


async def test_patch_without_content_range_streams_whole_blob(client: Client) -> None:
    data = b"docker sends one PATCH" * 1000
    location = await _start(client, "docker/style")
    response = await client.patch(location, data=data)
    assert response.status == 202
    assert response.headers["Range"] == f"0-{len(data) - 1}"
    response = await client.put(f"{response.headers['Location']}?digest={digest_of(data)}")
    assert response.status == 201


async def test_a_streamed_body_in_uneven_http_chunks_is_stored_intact(
    client: Client, config: Config
) -> None:
    # No Content-Length (Transfer-Encoding: chunked), more than one read-ahead piece, and
    # pieces that do not line up with anything the server reads in.
    pieces = [bytes([i % 251]) * (7919 * i + 13) for i in range(1, 40)]
    data = b"".join(pieces)
    assert len(data) > 3 << 20

    async def body() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    location = await _start(client, "streamed")
    response = await client.put(f"{location}?digest={digest_of(data)}", data=body())
    assert response.status == 201, await response.text()
    fetched = await client.get(f"/v2/streamed/blobs/{digest_of(data)}")
    assert await fetched.read() == data
    assert await _holds_held(config) == []
    assert await _pins_held(config) == []
    assert list((config.blob_root / "ingest").iterdir()) == []


async def test_a_refused_final_chunk_leaves_no_pin_and_the_session_usable(
    client: Client, config: Config
) -> None:
    data = b"0123456789"
    location = await _start(client, "refused")
    url = f"{location}?digest={digest_of(data)}"
    bad = await client.put(url, data=data[:5], headers={"Content-Range": "0-9"})
    assert bad.status == 400
    assert await error_code(bad) == "SIZE_INVALID"
    assert await _pins_held(config) == []
    assert await _holds_held(config) == []
    good = await client.put(url, data=data)
    assert good.status == 201
    assert await (await client.get(f"/v2/refused/blobs/{digest_of(data)}")).read() == data


async def test_out_of_order_chunk_is_416_and_session_stays_usable(client: Client) -> None:
    location = await _start(client, "ooo")
    await client.patch(location, data=b"12345", headers={"Content-Range": "0-4"})
    bad = await client.patch(location, data=b"xyz", headers={"Content-Range": "10-12"})
    assert bad.status == 416
    assert await error_code(bad) == "BLOB_UPLOAD_INVALID"
    assert bad.headers["Range"] == "0-4"
    status = await client.get(location)
    assert status.status == 204
    assert status.headers["Range"] == "0-4"
    assert status.headers["Location"] == location
    good = await client.patch(location, data=b"67890", headers={"Content-Range": "5-9"})
    assert good.status == 202
    assert good.headers["Range"] == "0-9"
    done = await client.put(f"{location}?digest={digest_of(b'1234567890')}")
    assert done.status == 201


async def test_out_of_order_final_chunk_in_put_is_416(client: Client) -> None:
    location = await _start(client, "ooo2")
    await client.patch(location, data=b"abc", headers={"Content-Range": "0-2"})
    response = await client.put(
        f"{location}?digest={digest_of(b'abcdef')}", data=b"def", headers={"Content-Range": "4-6"}
    )
    assert response.status == 416
    response = await client.put(
        f"{location}?digest={digest_of(b'abcdef')}", data=b"def", headers={"Content-Range": "3-5"}
    )
    assert response.status == 201


async def test_upload_status_of_fresh_session(client: Client) -> None:
    location = await _start(client, "status")
    response = await client.get(location)
    assert response.status == 204
    assert response.headers["Range"] == "0-0"
    assert response.headers["Docker-Upload-UUID"] == location.rsplit("/", 1)[1]


async def test_an_empty_chunk_then_the_rest_and_a_cancel_of_an_untouched_session(
    client: Client,
) -> None:
    """A session's first bytes may come late: an empty PATCH leaves it empty and usable;
    a session nothing was written to can be cancelled."""
    location = await _start(client, "late")
    empty = await client.patch(location, data=b"")
    assert empty.status == 202
    assert empty.headers["Range"] == "0-0"
    assert (await client.get(location)).headers["Range"] == "0-0"
    first = await client.patch(location, data=b"abc", headers={"Content-Range": "0-2"})
    assert first.headers["Range"] == "0-2"
    done = await client.put(f"{location}?digest={digest_of(b'abcdef')}", data=b"def")
    assert done.status == 201
    assert await (await client.get(f"/v2/late/blobs/{digest_of(b'abcdef')}")).read() == b"abcdef"
    untouched = await _start(client, "late")
    assert (await client.delete(untouched)).status == 204
    assert (await client.get(untouched)).status == 404


async def test_cancel_upload(client: Client) -> None:
    location = await _start(client, "cancel")
    await client.patch(location, data=b"partial")
    response = await client.delete(location)
    assert response.status == 204
    gone = await client.get(location)
    assert gone.status == 404
    assert await error_code(gone) == "BLOB_UPLOAD_UNKNOWN"
    assert (await client.patch(location, data=b"more")).status == 404


async def test_unknown_upload_is_blob_upload_unknown(client: Client) -> None:
    for method in ("GET", "PATCH", "PUT", "DELETE"):
        response = await client.request(
            method, f"/v2/x/blobs/uploads/{'0' * 32}?digest={digest_of(b'')}"
        )
        assert response.status == 404, method
        assert await error_code(response) == "BLOB_UPLOAD_UNKNOWN"
    weird = await client.get("/v2/x/blobs/uploads/..%2F..%2Fetc")
    assert weird.status == 404


async def test_upload_of_another_repository_is_unknown(client: Client) -> None:
    location = await _start(client, "owner")
    other = location.replace("/v2/owner/", "/v2/thief/")
    response = await client.patch(other, data=b"x")
    assert response.status == 404
    assert await error_code(response) == "BLOB_UPLOAD_UNKNOWN"


async def test_digest_mismatch_publishes_nothing(client: Client, config: Config) -> None:
    location = await _start(client, "mismatch")
    wrong = digest_of(b"something else")
    response = await client.put(f"{location}?digest={wrong}", data=b"actual bytes")
    assert response.status == 400
    assert await error_code(response) == "DIGEST_INVALID"
    assert (await client.get(f"/v2/mismatch/blobs/{wrong}")).status == 404
    assert (await client.get(f"/v2/mismatch/blobs/{digest_of(b'actual bytes')}")).status == 404
    assert (await client.get(location)).status == 404
    assert await _holds_held(config) == []
    assert await _pins_held(config) == []  # taken with the hold, dropped with the upload
    assert list((config.blob_root / "ingest").iterdir()) == []
    mono = await client.post(f"/v2/mismatch/blobs/uploads/?digest={wrong}", data=b"other bytes")
    assert mono.status == 400
    assert await error_code(mono) == "DIGEST_INVALID"


async def test_put_without_digest_is_digest_invalid(client: Client) -> None:
    location = await _start(client, "nodigest")
    response = await client.put(location, data=b"x")
    assert response.status == 400
    assert await error_code(response) == "DIGEST_INVALID"
    assert (await client.get(location)).status == 204  # the session survives a bad request


async def test_content_range_not_matching_length_is_size_invalid(client: Client) -> None:
    location = await _start(client, "size")
    response = await client.patch(location, data=b"abcd", headers={"Content-Range": "0-9"})
    assert response.status == 400
    assert await error_code(response) == "SIZE_INVALID"


async def test_malformed_content_range(client: Client) -> None:
    location = await _start(client, "badrange")
    response = await client.patch(location, data=b"abcd", headers={"Content-Range": "zero-three"})
    assert response.status == 400
    assert await error_code(response) == "BLOB_UPLOAD_INVALID"


async def test_zero_byte_blob(client: Client) -> None:
    response = await client.post(f"/v2/empty/blobs/uploads/?digest={EMPTY_DIGEST}", data=b"")
    assert response.status == 201
    got = await client.get(f"/v2/empty/blobs/{EMPTY_DIGEST}")
    assert got.status == 200
    assert await got.read() == b""
    location = await _start(client, "empty2")
    done = await client.put(f"{location}?digest={EMPTY_DIGEST}")
    assert done.status == 201
    head = await client.head(f"/v2/empty2/blobs/{EMPTY_DIGEST}")
    assert head.headers["Content-Length"] == "0"


async def test_sha512_upload(client: Client) -> None:
    import hashlib

    data = b"sha512 content"
    digest = "sha512:" + hashlib.sha512(data).hexdigest()
    location = await _start(client, "sha512")
    response = await client.put(f"{location}?digest={digest}", data=data)
    assert response.status == 201
    assert await (await client.get(f"/v2/sha512/blobs/{digest}")).read() == data


async def test_mount_from_another_repository(client: Client) -> None:
    digest = await push_blob(client, "source/repo", b"shared layer")
    response = await client.post(f"/v2/target/blobs/uploads/?mount={digest}&from=source/repo")
    assert response.status == 201
    assert response.headers["Location"] == f"/v2/target/blobs/{digest}"
    assert response.headers["Docker-Content-Digest"] == digest
    assert await (await client.get(f"/v2/target/blobs/{digest}")).read() == b"shared layer"


async def test_mount_without_from(client: Client) -> None:
    digest = await push_blob(client, "somewhere", b"findable")
    response = await client.post(f"/v2/elsewhere/blobs/uploads/?mount={digest}")
    assert response.status == 201
    assert (await client.get(f"/v2/elsewhere/blobs/{digest}")).status == 200


async def test_mount_of_unknown_blob_starts_an_upload(client: Client) -> None:
    digest = await push_blob(client, "has", b"here")
    response = await client.post(
        f"/v2/target/blobs/uploads/?mount={digest_of(b'nowhere')}&from=has"
    )
    assert response.status == 202
    assert response.headers["Location"].startswith("/v2/target/blobs/uploads/")
    wrong_source = await client.post(f"/v2/target/blobs/uploads/?mount={digest}&from=other")
    assert wrong_source.status == 202


async def test_concurrent_pushes_of_the_same_blob(client: Client) -> None:
    data = b"popular layer" * 1000
    results = await asyncio.gather(*(push_blob(client, "busy", data) for _ in range(20)))
    assert set(results) == {digest_of(data)}
    more = await asyncio.gather(*(push_blob(client, f"busy{i}", data) for i in range(10)))
    assert set(more) == {digest_of(data)}


async def test_unsupported_digest_algorithm_is_400(client: Client) -> None:
    response = await client.post("/v2/alg/blobs/uploads/?digest-algorithm=md5")
    assert response.status == 400
    assert await error_code(response) == "DIGEST_INVALID"
    ok = await client.post("/v2/alg/blobs/uploads/?digest-algorithm=sha512")
    assert ok.status == 202


async def test_concurrent_patches_at_one_offset_accept_exactly_one(client: Client) -> None:
    location = await _start(client, "twice")
    first_started = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield b"A" * 1024
        first_started.set()
        await asyncio.sleep(0.3)
        yield b"A" * 1024

    async def first() -> ClientResponse:
        return await client.patch(location, data=slow_body(), headers={"Content-Range": "0-2047"})

    async def second() -> ClientResponse:
        await first_started.wait()
        await asyncio.sleep(0.05)
        return await client.patch(location, data=b"B" * 2048, headers={"Content-Range": "0-2047"})

    one, two = await asyncio.gather(first(), second())
    assert sorted([one.status, two.status]) == [202, 416]
    status = await client.get(location)
    assert status.headers["Range"] == "0-2047"
    done = await client.put(f"{location}?digest={digest_of(b'A' * 2048)}")
    assert done.status == 201


async def test_first_requests_of_a_session_in_a_new_repository_race_cleanly(
    client: Client,
) -> None:
    """Two PATCHes of a session that has no row yet, in a repository not created yet, each
    trying to start both: one writes, the other finds it taken (416), never unknown (404)."""
    for attempt in range(12):
        location = await _start(client, f"fresh/repo{attempt}")
        chunks = [bytes([65 + n]) * 4096 for n in range(2)]
        answers = await asyncio.gather(
            *(client.patch(location, data=c, headers={"Content-Range": "0-4095"}) for c in chunks)
        )
        assert sorted(a.status for a in answers) == [202, 416], [a.status for a in answers]


async def test_purge_removes_abandoned_sessions_only(client: Client, config: Config) -> None:
    from datetime import timedelta

    from blobstore import FilesystemBlobStore
    from registry.db import Database
    from registry.service.purge import purge_uploads
    from registry.service.upload_locks import UploadLocks

    old = await _start(client, "purge")
    await client.patch(old, data=b"abandoned")
    await asyncio.sleep(0.6)  # the fresh one, below, stays younger than 0.5 s on a busy machine
    db = Database(config.database_url)
    store = FilesystemBlobStore(config.blob_root)
    locks = UploadLocks(db)
    try:
        dry = await purge_uploads(db, store, locks, older_than=timedelta(seconds=0), dry_run=True)
        assert dry == [old.rsplit("/", 1)[1]]
        assert (await client.get(old)).status == 204
        fresh = await _start(client, "purge")
        purged = await purge_uploads(db, store, locks, older_than=timedelta(seconds=0.5))
    finally:
        await db.dispose()
    assert purged == [old.rsplit("/", 1)[1]]
    assert (await client.get(old)).status == 404
    assert (await client.get(fresh)).status == 204
    assert not (config.blob_root / "ingest" / old.rsplit("/", 1)[1]).exists()


async def _open_sessions(config: Config) -> int:
    from sqlalchemy import func, select

    from registry.db import Database
    from registry.db.models import upload_sessions

    db = Database(config.database_url)
    try:
        async with db.read() as conn:
            query = select(func.count()).where(upload_sessions.c.ended_at.is_(None))
            return int((await conn.execute(query)).scalar_one())
    finally:
        await db.dispose()


async def test_starting_an_upload_writes_nothing_until_its_first_bytes(
    client: Client, config: Config
) -> None:
    """A POST answers with a signed id and writes no row: the first PATCH writes it."""
    location = await _start(client, "lazy/new")  # a repository that does not exist yet
    assert await _open_sessions(config) == 0
    status = await client.get(location)
    assert (status.status, status.headers["Range"]) == (204, "0-0")
    assert (await client.get("/v2/_catalog")).status == 200
    assert "lazy/new" not in (await (await client.get("/v2/_catalog")).json())["repositories"]
    assert (
        await client.patch(location, data=b"ab", headers={"Content-Range": "0-1"})
    ).status == 202
    assert await _open_sessions(config) == 1
    status = await client.get(location)
    assert (status.status, status.headers["Range"]) == (204, "0-1")
    done = await client.put(f"{location}?digest={digest_of(b'abc')}", data=b"c")
    assert done.status == 201, await done.text()
    assert await _open_sessions(config) == 0
    assert await (await client.get(f"/v2/lazy/new/blobs/{digest_of(b'abc')}")).read() == b"abc"


async def test_an_ended_upload_is_not_started_again(client: Client) -> None:
    """The id of an upload completed or cancelled before it wrote a row stays unknown."""
    data = b"whole in one put"
    completed = await _start(client, "ended")
    assert (await client.put(f"{completed}?digest={digest_of(data)}", data=data)).status == 201
    cancelled = await _start(client, "ended")
    assert (await client.delete(cancelled)).status == 204
    for location in (completed, cancelled):
        for method in ("GET", "PATCH", "PUT", "DELETE"):
            response = await client.request(method, f"{location}?digest={digest_of(data)}")
            assert response.status == 404, (location, method)
            assert await error_code(response) == "BLOB_UPLOAD_UNKNOWN"


async def test_an_unwritten_upload_expires_with_the_purging_age(
    aiohttp_client: ClientFactory, config: Config
) -> None:
    import dataclasses

    from registry import create_app
    from registry.config import MaintenanceConfig, StorageConfig, UploadPurgingConfig

    purging = UploadPurgingConfig(age=1.0)
    storage = StorageConfig(maintenance=MaintenanceConfig(uploadpurging=purging))
    client = await aiohttp_client(create_app(dataclasses.replace(config, storage=storage)))
    location = await _start(client, "expiring")
    assert (await client.get(location)).status == 204
    await asyncio.sleep(2.1)  # the id's time is whole seconds
    gone = await client.get(location)
    assert gone.status == 404
    assert await error_code(gone) == "BLOB_UPLOAD_UNKNOWN"
    assert (await client.patch(location, data=b"late")).status == 404
