"""Verified, resumable blob downloads.

`resumable_blob` yields a blob's bytes from the registry; when the connection drops mid-blob it
asks again from the first byte its caller has not kept (`written()`) with a `Range` request, or
skips those bytes if the registry answers the whole blob again. `verified_blob` checks them
against the digest and size and holds back the last chunk until the check passed: a blob whose
bytes are not the digest's raises DigestMismatch or SizeMismatch before its last byte reaches
the caller, so nothing downstream commits it or finishes a response with it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable
from typing import Final

import aiohttp

from blobstore import Digest, VerifyingReader
from registry_client.client import RegistryClient, describe_error
from registry_client.errors import RegistryError

CHUNK: Final = 1 << 20

RetrySink = Callable[[int, str], None]
"""Told (bytes kept so far, why) before each retry of a dropped download."""


async def verified_blob(
    client: RegistryClient,
    repository: str,
    digest: Digest,
    size: int,
    written: Callable[[], int],
    on_retry: RetrySink | None = None,
) -> AsyncGenerator[bytes, None]:
    """The blob's chunks, each yielded once the next has arrived, so that the last one comes
    only after the digest and size were checked."""
    received = 0

    def offset() -> int:
        # Resume after what the verifier hashed: the held chunk is the caller's only later.
        return max(received, written())

    source = resumable_blob(client, repository, digest, size, offset, on_retry)
    async with contextlib.aclosing(source):
        held: bytes | None = None
        async for chunk in VerifyingReader(source, digest, size):
            received += len(chunk)
            if held is not None:
                yield held
            held = chunk
        if held is not None:
            yield held


async def resumable_blob(
    client: RegistryClient,
    repository: str,
    digest: Digest,
    size: int,
    written: Callable[[], int],
    on_retry: RetrySink | None = None,
) -> AsyncGenerator[bytes, None]:
    failures = 0
    while True:
        offset = written()
        if offset >= size and offset > 0:
            return
        try:
            async with client.get_blob(repository, digest, offset) as resp:
                skip = offset if resp.status == 200 else 0
                if resp.status == 206 and not _range_starts_at(resp, offset):
                    raise RegistryError(
                        f"blob {digest}: registry answered the wrong range "
                        f"{resp.headers.get('Content-Range')!r}"
                    )
                async for chunk in resp.content.iter_chunked(CHUNK):
                    if skip:
                        dropped = min(skip, len(chunk))
                        chunk, skip = chunk[dropped:], skip - dropped
                        if not chunk:
                            continue
                    failures = 0
                    yield chunk
            return
        except (TimeoutError, aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
            failures += 1
            if failures >= client.retry.attempts:
                raise RegistryError(
                    f"blob {digest}: download failed after {failures} "
                    f"attempts: {describe_error(exc)}"
                ) from exc
            if on_retry is not None:
                on_retry(written(), describe_error(exc))
            await asyncio.sleep(client.retry.delay(failures))


def _range_starts_at(resp: aiohttp.ClientResponse, offset: int) -> bool:
    content_range = resp.headers.get("Content-Range", "")
    unit, _, spec = content_range.partition(" ")
    return unit == "bytes" and spec.split("-", 1)[0] == str(offset)
