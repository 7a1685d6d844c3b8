"""VerifyingReader: bytes pass through unchanged; a wrong size or digest fails, never silently."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blobstore import Digest, DigestMismatch, SizeMismatch, VerifyingReader

chunk_lists = st.lists(st.binary(max_size=300), max_size=8)


async def source(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def drain(reader: VerifyingReader, seen: list[bytes]) -> None:
    async for chunk in reader:
        seen.append(chunk)


@settings(max_examples=50, deadline=None)
@given(chunk_lists, st.booleans())
async def test_matching_stream_passes_through(chunks: list[bytes], with_size: bool) -> None:
    data = b"".join(chunks)
    seen: list[bytes] = []
    size = len(data) if with_size else None
    await drain(VerifyingReader(source(chunks), Digest.of(data), size), seen)
    assert seen == chunks


@settings(max_examples=50, deadline=None)
@given(chunk_lists, st.binary(min_size=1, max_size=20))
async def test_wrong_digest_fails_at_the_end(chunks: list[bytes], other: bytes) -> None:
    data = b"".join(chunks)
    wrong = Digest.of(data + other)
    seen: list[bytes] = []
    with pytest.raises(DigestMismatch) as caught:
        await drain(VerifyingReader(source(chunks), wrong, len(data)), seen)
    assert seen == chunks
    assert (caught.value.expected, caught.value.actual) == (wrong, Digest.of(data))


@settings(max_examples=50, deadline=None)
@given(chunk_lists.filter(lambda c: len(b"".join(c)) > 0), st.data())
async def test_too_many_bytes_fail_as_soon_as_they_arrive(
    chunks: list[bytes], data: st.DataObject
) -> None:
    total = len(b"".join(chunks))
    limit = data.draw(st.integers(0, total - 1))
    seen: list[bytes] = []
    with pytest.raises(SizeMismatch):
        await drain(VerifyingReader(source(chunks), Digest.of(b"".join(chunks)), limit), seen)
    assert sum(len(c) for c in seen) <= limit


async def test_too_few_bytes_fail_at_the_end() -> None:
    seen: list[bytes] = []
    with pytest.raises(SizeMismatch) as caught:
        await drain(VerifyingReader(source([b"abc"]), Digest.of(b"abc"), 4), seen)
    assert seen == [b"abc"]
    assert (caught.value.expected, caught.value.actual) == (4, 3)


def test_negative_size_is_refused_up_front() -> None:
    with pytest.raises(SizeMismatch):
        VerifyingReader(source([]), Digest.of(b""), -1)


async def test_sha512_stream() -> None:
    seen: list[bytes] = []
    await drain(VerifyingReader(source([b"a", b"b"]), Digest.of(b"ab", "sha512"), 2), seen)
    assert seen == [b"a", b"b"]
