"""The `store` fixture: every BlobStore driver, each run through the same conformance suite.

A driver joins by adding one `Driver` to `DRIVERS`: how to build a store under a fresh
directory, how to reopen the same storage as another process would, and how to list the
ingest files it left behind. Teardown fails the test when an ingest is left over, so every
test must commit or abort what it began (as distribution's driver suite checks in
TearDownTest).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from blobstore import BlobStore, FilesystemBlobStore


@dataclass(frozen=True)
class Driver:
    name: str
    open: Callable[[Path], BlobStore]
    leftovers: Callable[[Path], list[str]]


def _filesystem_leftovers(root: Path) -> list[str]:
    """Ingest files, plus anything under blobs/ that is not a committed blob's path."""
    found = [f"ingest/{name}" for name in os.listdir(root / "ingest")]
    for dirpath, _dirs, files in os.walk(root / "blobs"):
        for name in files:
            rel = Path(dirpath, name).relative_to(root / "blobs")
            parts = rel.parts
            if len(parts) != 3 or parts[1] != name[:2]:
                found.append(f"blobs/{rel}")
    return found


DRIVERS = [Driver("filesystem", FilesystemBlobStore, _filesystem_leftovers)]


@dataclass
class StoreUnderTest:
    driver: Driver
    root: Path
    store: BlobStore

    def reopen(self) -> BlobStore:
        """A second, independent handle on the same storage (another worker, or a restart)."""
        return self.driver.open(self.root)


@pytest.fixture(params=DRIVERS, ids=lambda d: d.name)
def sut(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreUnderTest]:
    driver: Driver = request.param
    root = tmp_path / "store"
    root.mkdir()
    yield StoreUnderTest(driver, root, driver.open(root))
    left = driver.leftovers(root)
    if left:
        pytest.fail(f"{driver.name} driver left files behind: {left}")


@pytest.fixture
def store(sut: StoreUnderTest) -> BlobStore:
    return sut.store
