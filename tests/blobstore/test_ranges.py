"""Byte-range reads: property tests of BlobReader.read(digest, start, end) over every driver."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blobstore import BlobStore, Digest, InvalidRange
from tests.blobstore.test_conformance import put, read_all

SIZE = 10_000
DATA = os.urandom(SIZE)
# The blob is the same for every example, so a function-scoped store is safe to share.
_settings = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_settings
@given(start=st.integers(0, SIZE), length=st.integers(0, SIZE))
async def test_any_range_inside_the_blob(store: BlobStore, start: int, length: int) -> None:
    digest = Digest.of(DATA)
    if not await _has(store, digest):
        await put(store, DATA)
    end = min(SIZE, start + length)
    assert await read_all(store, digest, start, end) == DATA[start:end]
    assert await read_all(store, digest, start) == DATA[start:]


@_settings
@given(
    bounds=st.one_of(
        st.tuples(st.integers(-SIZE, -1), st.none() | st.integers(0, SIZE)),
        st.tuples(st.integers(0, SIZE), st.integers(SIZE + 1, 4 * SIZE)),
        st.tuples(st.integers(SIZE + 1, 4 * SIZE), st.none()),
        st.integers(1, SIZE).flatmap(lambda s: st.tuples(st.just(s), st.integers(0, s - 1))),
    )
)
async def test_ranges_the_blob_cannot_satisfy(
    store: BlobStore, bounds: tuple[int, int | None]
) -> None:
    digest = Digest.of(DATA)
    if not await _has(store, digest):
        await put(store, DATA)
    start, end = bounds
    with pytest.raises(InvalidRange) as caught:
        await read_all(store, digest, start, end)
    assert caught.value.size == SIZE


async def test_empty_range_of_an_empty_blob(store: BlobStore) -> None:
    info = await put(store, b"")
    assert await read_all(store, info.digest, 0, 0) == b""
    with pytest.raises(InvalidRange):
        await read_all(store, info.digest, 0, 1)


async def _has(store: BlobStore, digest: Digest) -> bool:
    return any([info.digest == digest async for info in store.walk()])
