"""What the S3 driver promises beyond the shared contract: Distribution's key layout, a saved
state that outlives a later request which died half way, and copies past CopyObject's limit."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from blobstore import Digest
from blobstore import s3 as s3_driver
from blobstore.s3 import MIN_CHUNK_SIZE, S3BlobStore
from tests.blobstore.conftest import s3_options
from tests.blobstore.test_conformance import read_all
from tests.support.seaweedfs import SeaweedFS, bucket_contents

pytestmark = pytest.mark.s3


@pytest.fixture
async def store(seaweedfs: SeaweedFS, s3_bucket: str) -> AsyncIterator[S3BlobStore]:
    opened = S3BlobStore(s3_options(seaweedfs, s3_bucket, storage_class=None))
    yield opened
    await opened.close()


async def test_blobs_are_laid_out_as_distribution_lays_them_out(
    store: S3BlobStore, seaweedfs: SeaweedFS, s3_bucket: str
) -> None:
    upload = await store.begin()
    await upload.write(b"layout")
    digest = Digest.of(b"layout")
    await upload.commit(digest)
    assert await bucket_contents(seaweedfs, s3_bucket) == [
        f"berth-test/docker/registry/v2/blobs/sha256/{digest.hex[:2]}/{digest.hex}/data"
    ]


async def test_an_older_state_survives_a_request_that_died_half_way(store: S3BlobStore) -> None:
    """A replica stored a part and a new tail, then died before its session row was updated:
    the state saved before still describes the upload, and the client's retry wins."""
    head = os.urandom(1000)
    upload = await store.begin()
    await upload.write(head)
    await upload.close()
    saved = upload.state()

    doomed = await store.resume(upload.id, saved)
    await doomed.write(os.urandom(MIN_CHUNK_SIZE + 5000))  # a part, then a new tail
    await doomed.close()  # ... and its state is never saved

    retry = await store.resume(upload.id, saved)
    assert retry.size == len(head)
    rest = os.urandom(MIN_CHUNK_SIZE + 123)
    await retry.write(rest)
    info = await retry.commit(Digest.of(head + rest), len(head) + len(rest))
    assert await read_all(store, info.digest) == head + rest


async def test_copies_past_the_copy_object_limit_go_in_parts(
    store: S3BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CopyObject stops at 5 GiB; scaled down, the same path copies in ranged parts.
    monkeypatch.setattr(s3_driver, "_MAX_COPY_OBJECT", MIN_CHUNK_SIZE)
    monkeypatch.setattr(s3_driver, "_COPY_PART", MIN_CHUNK_SIZE)
    data = os.urandom(2 * MIN_CHUNK_SIZE + 4321)
    upload = await store.begin()
    await upload.write(data)
    info = await upload.commit(Digest.of(data))
    assert await read_all(store, info.digest) == data
    assert await store.multipart_uploads() == []
