"""The BlobStore contract (blobstore/protocol.py), run against every driver in conftest.DRIVERS."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os

import pytest

from blobstore import (
    BlobInfo,
    BlobNotFound,
    BlobStore,
    Digest,
    DigestMismatch,
    SizeMismatch,
    UploadNotFound,
    new_upload_id,
)
from tests.blobstore.conftest import StoreUnderTest


async def read_all(
    store: BlobStore, digest: Digest, start: int = 0, end: int | None = None
) -> bytes:
    return b"".join([chunk async for chunk in store.read(digest, start, end)])


async def put(store: BlobStore, data: bytes, algorithm: str = "sha256") -> BlobInfo:
    upload = await store.begin()
    await upload.write(data)
    return await upload.commit(Digest.of(data, algorithm), len(data))


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
async def test_commit_then_stat_and_read_round_trip(store: BlobStore, algorithm: str) -> None:
    data = os.urandom(5000)
    info = await put(store, data, algorithm)
    assert info == BlobInfo(Digest.of(data, algorithm), 5000)
    assert await store.stat(info.digest) == info
    assert await read_all(store, info.digest) == data


async def test_zero_byte_blob(store: BlobStore) -> None:
    info = await put(store, b"")
    assert str(info.digest) == "sha256:" + hashlib.sha256(b"").hexdigest()
    assert (await store.stat(info.digest)).size == 0
    assert await read_all(store, info.digest) == b""


async def test_many_chunks_larger_than_write_buffer(store: BlobStore) -> None:
    chunks = [os.urandom(700_000) for _ in range(5)]
    data = b"".join(chunks)
    upload = await store.begin()
    for chunk in chunks:
        await upload.write(chunk)
    assert upload.size == len(data)
    info = await upload.commit(Digest.of(data))
    assert info.size == len(data)
    assert (
        hashlib.sha256(await read_all(store, info.digest)).digest() == hashlib.sha256(data).digest()
    )


async def test_nothing_is_visible_before_commit(store: BlobStore) -> None:
    data = os.urandom(3 << 20)
    digest = Digest.of(data)
    upload = await store.begin()
    await upload.write(data)
    with pytest.raises(BlobNotFound):
        await store.stat(digest)
    with pytest.raises(BlobNotFound):
        await read_all(store, digest)
    assert [info async for info in store.walk()] == []
    await upload.commit(digest)
    assert (await store.stat(digest)).size == len(data)


async def test_digest_mismatch_publishes_nothing_and_discards_the_ingest(store: BlobStore) -> None:
    upload = await store.begin()
    await upload.write(b"actual bytes")
    wrong = Digest.of(b"other bytes")
    with pytest.raises(DigestMismatch) as caught:
        await upload.commit(wrong)
    assert caught.value.expected == wrong
    assert caught.value.actual == Digest.of(b"actual bytes")
    for digest in (wrong, Digest.of(b"actual bytes")):
        with pytest.raises(BlobNotFound):
            await store.stat(digest)
    with pytest.raises(UploadNotFound):
        await store.resume(upload.id)


async def test_size_mismatch_publishes_nothing(store: BlobStore) -> None:
    data = b"twelve bytes"
    upload = await store.begin()
    await upload.write(data)
    with pytest.raises(SizeMismatch) as caught:
        await upload.commit(Digest.of(data), size=len(data) + 1)
    assert (caught.value.expected, caught.value.actual) == (len(data) + 1, len(data))
    with pytest.raises(BlobNotFound):
        await store.stat(Digest.of(data))
    with pytest.raises(UploadNotFound):
        await store.resume(upload.id)


async def test_resume_continues_an_upload_from_its_size(store: BlobStore) -> None:
    first, second = os.urandom(1500), os.urandom(2500)
    upload = await store.begin()
    await upload.write(first)
    await upload.close()
    resumed = await store.resume(upload.id, upload.state())
    assert resumed.id == upload.id
    assert resumed.size == len(first)
    await resumed.write(second)
    info = await resumed.commit(Digest.of(first + second))
    assert await read_all(store, info.digest) == first + second


async def test_resume_from_another_handle_on_the_same_storage(sut: StoreUnderTest) -> None:
    """A second worker (or a restarted server) has no hasher for the upload and must still
    verify the whole content; the first one must catch up with what the second appended."""
    parts = [os.urandom(1 << 20) + b"x" for _ in range(3)]
    other = sut.reopen()
    upload = await sut.store.begin()
    await upload.write(parts[0])
    await upload.close()
    elsewhere = await other.resume(upload.id, upload.state())
    assert elsewhere.size == len(parts[0])
    await elsewhere.write(parts[1])
    await elsewhere.close()
    back = await sut.store.resume(upload.id, elsewhere.state())
    assert back.size == len(parts[0]) + len(parts[1])
    await back.write(parts[2])
    data = b"".join(parts)
    info = await back.commit(Digest.of(data), len(data))
    assert await read_all(other, info.digest) == data


async def test_resume_without_a_saved_state_works_out_the_progress(
    sut: StoreUnderTest,
) -> None:
    """A session saved before its state (or by an older Berth): the store works out the size
    from what it holds, and commit hashes the content again."""
    first, second = os.urandom(6 << 20), os.urandom(3000)
    upload = await sut.store.begin()
    await upload.write(first)
    await upload.close()
    resumed = await sut.reopen().resume(upload.id)
    assert resumed.size == len(first)
    await resumed.write(second)
    with pytest.raises(DigestMismatch):
        await resumed.commit(Digest.of(second))
    upload = await sut.store.begin()
    await upload.write(first)
    await upload.close()
    resumed = await sut.reopen().resume(upload.id)
    await resumed.write(second)
    info = await resumed.commit(Digest.of(first + second), len(first) + len(second))
    assert await read_all(sut.store, info.digest) == first + second


async def test_a_chunk_boundary_resumed_on_another_handle(sut: StoreUnderTest) -> None:
    """Chunks of odd sizes, each written by a different handle from the last saved state,
    crossing the S3 part size: the tails travel between handles through the storage."""
    data = os.urandom(13 << 20)
    cuts = [0, 1, 4 << 20, (5 << 20) + 7, 11 << 20, len(data)]
    upload = await sut.store.begin()
    await upload.close()
    state = upload.state()
    for start, stop in itertools.pairwise(cuts):
        handle = await sut.reopen().resume(upload.id, state)
        assert handle.size == start
        await handle.write(data[start:stop])
        await handle.close()
        state = handle.state()
    final = await sut.reopen().resume(upload.id, state)
    info = await final.commit(Digest.of(data), len(data))
    assert await read_all(sut.store, info.digest) == data
    assert (
        await read_all(sut.store, info.digest, (5 << 20) - 3, (5 << 20) + 3)
        == data[(5 << 20) - 3 : (5 << 20) + 3]
    )


async def test_commit_in_a_fresh_handle_verifies_the_content(sut: StoreUnderTest) -> None:
    upload = await sut.store.begin()
    await upload.write(b"written before the crash")
    await upload.close()
    restarted = sut.reopen()
    resumed = await restarted.resume(upload.id)
    with pytest.raises(DigestMismatch):
        await resumed.commit(Digest.of(b"something else"))
    with pytest.raises(BlobNotFound):
        await restarted.stat(Digest.of(b"something else"))


@pytest.mark.parametrize("upload_id", ["0" * 32, "not-an-id", "../../etc/passwd", "", "A" * 32])
async def test_resume_of_an_unknown_upload(store: BlobStore, upload_id: str) -> None:
    with pytest.raises(UploadNotFound):
        await store.resume(upload_id)


async def test_open_upload_begins_a_new_id_that_nothing_touched_yet(
    sut: StoreUnderTest,
) -> None:
    """An upload session's id: opened, looked at and closed, it is still empty and may be
    opened again anywhere; its first bytes, in one request, commit as a whole blob."""
    upload_id = new_upload_id()
    looked_at = await sut.store.open_upload(upload_id)
    assert (looked_at.id, looked_at.size) == (upload_id, 0)
    await looked_at.close()
    data = os.urandom(4096)
    upload = await sut.reopen().open_upload(upload_id)
    assert upload.size == 0
    await upload.write(data)
    info = await upload.commit(Digest.of(data), len(data))
    assert await read_all(sut.store, info.digest) == data


async def test_open_upload_resumes_what_an_earlier_request_wrote(sut: StoreUnderTest) -> None:
    upload_id = new_upload_id()
    first = await sut.store.open_upload(upload_id)
    await first.write(b"first ")
    await first.close()
    second = await sut.reopen().open_upload(upload_id)
    assert second.size == len(b"first ")
    await second.write(b"second")
    info = await second.commit(Digest.of(b"first second"))
    assert await read_all(sut.store, info.digest) == b"first second"


async def test_open_upload_of_a_new_id_aborts_cleanly(store: BlobStore) -> None:
    upload = await store.open_upload(new_upload_id())
    await upload.abort()
    with pytest.raises(UploadNotFound):
        await upload.write(b"more")
    with pytest.raises(UploadNotFound):
        await store.resume(upload.id)


@pytest.mark.parametrize("upload_id", ["not-an-id", "../../etc/passwd", "", "A" * 32])
async def test_open_upload_of_a_malformed_id(store: BlobStore, upload_id: str) -> None:
    with pytest.raises(UploadNotFound):
        await store.open_upload(upload_id)


async def test_abort_is_idempotent_and_discards(store: BlobStore) -> None:
    upload = await store.begin()
    await upload.write(b"to be discarded")
    await upload.abort()
    await upload.abort()
    with pytest.raises(UploadNotFound):
        await store.resume(upload.id)
    with pytest.raises(UploadNotFound):
        await upload.write(b"more")
    with pytest.raises(UploadNotFound):
        await upload.commit(Digest.of(b"more"))
    with pytest.raises(BlobNotFound):
        await store.stat(Digest.of(b"to be discarded"))


async def test_abort_after_commit_keeps_the_blob(store: BlobStore) -> None:
    upload = await store.begin()
    await upload.write(b"kept")
    info = await upload.commit(Digest.of(b"kept"))
    await upload.abort()
    assert await read_all(store, info.digest) == b"kept"


async def test_abort_of_a_resumed_upload_removes_it_for_every_handle(sut: StoreUnderTest) -> None:
    upload = await sut.store.begin()
    await upload.write(b"partial")
    await upload.close()
    still_open = await sut.store.resume(upload.id, upload.state())
    await (await sut.reopen().resume(upload.id)).abort()
    with pytest.raises(UploadNotFound):
        await sut.store.resume(upload.id)
    # A handle opened before the abort sees the ingest gone, as the protocol documents
    # (the write is larger than any sane buffer, so it reaches the storage).
    more = os.urandom(6 << 20)
    with pytest.raises(UploadNotFound):
        await still_open.write(more)
    with pytest.raises(UploadNotFound):
        await still_open.commit(Digest.of(b"partial" + more))
    await still_open.abort()
    with pytest.raises(BlobNotFound):
        await sut.store.stat(Digest.of(b"partial" + more))


async def test_same_content_committed_twice_is_stored_once(store: BlobStore) -> None:
    data = os.urandom(4096)
    first = await put(store, data)
    second = await put(store, data)
    assert first == second
    assert [info async for info in store.walk()] == [first]
    assert await read_all(store, first.digest) == data


async def test_concurrent_uploads_of_the_same_content(store: BlobStore) -> None:
    data = os.urandom(2 << 20)
    results = await asyncio.gather(*(put(store, data) for _ in range(8)))
    assert {r.digest for r in results} == {Digest.of(data)}
    assert [info async for info in store.walk()] == [results[0]]
    assert await read_all(store, results[0].digest) == data


async def test_concurrent_uploads_of_different_content(store: BlobStore) -> None:
    blobs = [os.urandom(100_000 + i) for i in range(6)]
    results = await asyncio.gather(*(put(store, b) for b in blobs))
    for data, info in zip(blobs, results, strict=True):
        assert await read_all(store, info.digest) == data
    assert sorted([i async for i in store.walk()], key=lambda i: i.size) == list(results)


async def test_delete_is_idempotent(store: BlobStore) -> None:
    info = await put(store, b"delete me")
    await store.delete(info.digest)
    await store.delete(info.digest)
    with pytest.raises(BlobNotFound):
        await store.stat(info.digest)
    with pytest.raises(BlobNotFound):
        await read_all(store, info.digest)
    await store.delete(Digest.of(b"never stored"))


async def test_walk_lists_committed_blobs_of_every_algorithm(store: BlobStore) -> None:
    a = await put(store, b"a", "sha256")
    b = await put(store, b"b", "sha512")
    pending = await store.begin()
    await pending.write(b"pending")
    try:
        assert {info async for info in store.walk()} == {a, b}
    finally:
        await pending.abort()


async def test_missing_blob(store: BlobStore) -> None:
    missing = Digest.of(b"missing")
    with pytest.raises(BlobNotFound) as caught:
        await store.stat(missing)
    assert str(missing) in str(caught.value)


async def test_idle_uploads_lists_only_uploads_idle_that_long(store: BlobStore) -> None:
    upload = await store.begin()
    await upload.write(b"abandoned")
    await upload.close()
    assert upload.id not in await store.idle_uploads(3600)
    await asyncio.sleep(1.1)  # S3 keeps the time an upload began to the second
    assert upload.id in await store.idle_uploads(0.5)
    await (await store.resume(upload.id, upload.state())).abort()
    assert upload.id not in await store.idle_uploads(0)


async def test_an_upload_written_to_lately_is_not_idle_however_old(store: BlobStore) -> None:
    """Idle means nothing written for that long, not begun that long ago: a slow upload of a
    big layer keeps its parts."""
    upload = await store.begin()
    await upload.write(os.urandom(11 << 20))  # past S3's part size: one part stored
    await upload.close()
    await asyncio.sleep(2.1)
    again = await store.resume(upload.id, upload.state())
    await again.write(os.urandom(10 << 20))  # another part, now
    await again.close()
    assert upload.id not in await store.idle_uploads(1.5)
    await (await store.resume(upload.id, again.state())).abort()


async def test_one_handle_writes_several_parts_and_commits(store: BlobStore) -> None:
    """Begun, written past S3's part size and committed by one handle, never closed: what
    the upload stored on the way is gone afterwards (the teardown checks for leftovers)."""
    data = os.urandom((11 << 20) + 3)
    upload = await store.begin()
    for start in range(0, len(data), 1 << 20):
        await upload.write(data[start : start + (1 << 20)])
    info = await upload.commit(Digest.of(data), len(data))
    assert await read_all(store, info.digest) == data
