"""A stream wrapper that verifies size and digest as the bytes pass (umoci's VerifiedReadCloser)."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

from blobstore.digest import Digest
from blobstore.errors import DigestMismatch, SizeMismatch


class VerifyingReader:
    """Yields the chunks of `source`; fails with SizeMismatch as soon as more than
    `expected_size` bytes arrive, and with DigestMismatch or SizeMismatch at the end."""

    def __init__(
        self, source: AsyncIterable[bytes], expected: Digest, expected_size: int | None
    ) -> None:
        if expected_size is not None and expected_size < 0:
            raise SizeMismatch(0, expected_size)  # a negative size is a DoS vector, not a size
        self._source = source
        self._expected = expected
        self._expected_size = expected_size

    async def __aiter__(self) -> AsyncIterator[bytes]:
        hasher = self._expected.hasher()
        seen = 0
        async for chunk in self._source:
            seen += len(chunk)
            if self._expected_size is not None and seen > self._expected_size:
                raise SizeMismatch(self._expected_size, seen)
            hasher.update(chunk)
            yield chunk
        if self._expected_size is not None and seen != self._expected_size:
            raise SizeMismatch(self._expected_size, seen)
        actual = Digest.from_hasher(hasher)
        if actual != self._expected:
            raise DigestMismatch(self._expected, actual)
