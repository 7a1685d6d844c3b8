"""The `store` fixture: every BlobStore driver, each run through the same conformance suite.

A driver joins by adding one `Driver` to `DRIVERS`: how to open a store on fresh storage
(and reopen the same storage as another process or replica would), and how to list what it
left behind. Teardown fails the test when an ingest is left over, so every test must commit
or abort what it began (as distribution's driver suite checks in TearDownTest). S3 runs on a
real SeaweedFS (tests/support/seaweedfs.py), one fresh bucket per test.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from blobstore import BlobStore, FilesystemBlobStore
from blobstore.s3 import MIN_CHUNK_SIZE, S3BlobStore, S3Options
from tests.support.seaweedfs import ACCESS_KEY, REGION, SECRET_KEY, SeaweedFS


@dataclass(frozen=True)
class Driver:
    name: str
    open: Callable[[pytest.FixtureRequest, Path], BlobStore]
    leftovers: Callable[[BlobStore], Awaitable[list[str]]]


def _filesystem(request: pytest.FixtureRequest, root: Path) -> BlobStore:
    return FilesystemBlobStore(root)


def _filesystem_with_helper(request: pytest.FixtureRequest, root: Path) -> BlobStore:
    return FilesystemBlobStore(root, publish_helper=True)  # as the registry opens it


async def _filesystem_leftovers(store: BlobStore) -> list[str]:
    """Ingest files, plus anything under blobs/ that is not a committed blob's path."""
    assert isinstance(store, FilesystemBlobStore)
    root = store.root
    found = [f"ingest/{name}" for name in os.listdir(root / "ingest")]
    for dirpath, _dirs, files in os.walk(root / "blobs"):
        for name in files:
            rel = Path(dirpath, name).relative_to(root / "blobs")
            parts = rel.parts
            if len(parts) != 3 or parts[1] != name[:2]:
                found.append(f"blobs/{rel}")
    return found


def s3_options(seaweedfs: SeaweedFS, bucket: str, **changes: object) -> S3Options:
    options = S3Options(
        bucket=bucket,
        region=REGION,
        endpoint_url=seaweedfs.endpoint,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        root="/berth-test",
        path_style=True,
        chunk_size=MIN_CHUNK_SIZE,
    )
    return dataclasses.replace(options, **changes)  # type: ignore[arg-type]  # field names


def _s3(request: pytest.FixtureRequest, root: Path) -> BlobStore:
    seaweedfs: SeaweedFS = request.getfixturevalue("seaweedfs")
    bucket: str = request.getfixturevalue("s3_bucket")
    return S3BlobStore(s3_options(seaweedfs, bucket))


async def _s3_leftovers(store: BlobStore) -> list[str]:
    """Every key that is not a committed blob's data, and every multipart upload."""
    assert isinstance(store, S3BlobStore)
    s3 = await store.client()
    found = [f"multipart {key}" for key in await store.multipart_uploads()]
    paginator = s3.get_paginator("list_objects_v2")
    async for page in paginator.paginate(Bucket=store.bucket):
        for item in page.get("Contents", []):
            parts = item["Key"].split("/")
            blob = parts[:5] == ["berth-test", "docker", "registry", "v2", "blobs"]
            if not blob or len(parts) != 9 or parts[8] != "data" or parts[6] != parts[7][:2]:
                found.append(item["Key"])
    return found


DRIVERS = [
    pytest.param(Driver("filesystem", _filesystem, _filesystem_leftovers), id="filesystem"),
    pytest.param(
        Driver("filesystem-helper", _filesystem_with_helper, _filesystem_leftovers),
        id="filesystem-helper",
    ),
    pytest.param(Driver("s3", _s3, _s3_leftovers), id="s3", marks=pytest.mark.s3),
]


@dataclass
class StoreUnderTest:
    driver: Driver
    request: pytest.FixtureRequest
    root: Path
    store: BlobStore
    opened: list[BlobStore] = field(default_factory=list)

    def reopen(self) -> BlobStore:
        """A second, independent handle on the same storage (another worker, or a replica)."""
        other = self.driver.open(self.request, self.root)
        self.opened.append(other)
        return other


async def close_store(store: BlobStore) -> None:
    if isinstance(store, S3BlobStore | FilesystemBlobStore):
        await store.close()


@pytest.fixture(params=DRIVERS)
async def sut(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreUnderTest]:
    driver: Driver = request.param
    root = tmp_path / "store"
    root.mkdir()
    under_test = StoreUnderTest(driver, request, root, driver.open(request, root))
    try:
        yield under_test
        left = await driver.leftovers(under_test.store)
        if left:
            pytest.fail(f"{driver.name} driver left files behind: {left}")
    finally:
        for store in (under_test.store, *under_test.opened):
            await close_store(store)


@pytest.fixture
def store(sut: StoreUnderTest) -> BlobStore:
    return sut.store
