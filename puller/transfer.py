"""Downloading blobs into the local content store: verified, resumable, bounded in number.

A blob streams from the registry through a `VerifyingReader` into a content-store `Upload`;
nothing is readable in the store before the digest and size check passed. When the
connection drops mid-blob, the download continues from the bytes already written with a
`Range` request (or skips them, if the registry answers the whole blob again).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable
from typing import Final

import aiohttp

from blobstore import (
    BlobNotFound,
    BlobStore,
    Digest,
    DigestMismatch,
    SizeMismatch,
    VerifyingReader,
)
from puller.client import RegistryClient, describe_error
from puller.errors import RegistryError
from puller.progress import Phase, ProgressEvent, ProgressSink

_CHUNK: Final = 1 << 20


async def ensure_blob(
    client: RegistryClient,
    store: BlobStore,
    repository: str,
    digest: Digest,
    size: int,
    progress: ProgressSink | None = None,
) -> bool:
    """Make `digest` present in `store`; True when bytes were downloaded, False when it
    was there already."""
    report = progress or _ignore
    try:
        await store.stat(digest)
    except BlobNotFound:
        pass
    else:
        report(ProgressEvent(Phase.EXISTS, digest, size, size))
        return False
    upload = await store.begin()
    report(ProgressEvent(Phase.DOWNLOADING, digest, 0, size))
    source = _resumable(client, repository, digest, size, lambda: upload.size, report)
    try:
        # closed here, in this task, even when verification stops reading mid-response
        async with contextlib.aclosing(source):
            async for chunk in VerifyingReader(source, digest, size):
                await upload.write(chunk)
                report(ProgressEvent(Phase.DOWNLOADING, digest, upload.size, size))
        await upload.commit(digest, size)
    except (DigestMismatch, SizeMismatch) as exc:
        raise RegistryError(f"blob {digest}: the registry sent other bytes ({exc})") from None
    finally:
        await upload.abort()
    report(ProgressEvent(Phase.DOWNLOADED, digest, size, size))
    return True


async def _resumable(
    client: RegistryClient,
    repository: str,
    digest: Digest,
    size: int,
    written: Callable[[], int],
    report: ProgressSink,
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
                async for chunk in resp.content.iter_chunked(_CHUNK):
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
            report(ProgressEvent(Phase.RETRYING, digest, written(), size, describe_error(exc)))
            await asyncio.sleep(client.retry.delay(failures))


def _range_starts_at(resp: aiohttp.ClientResponse, offset: int) -> bool:
    content_range = resp.headers.get("Content-Range", "")
    unit, _, spec = content_range.partition(" ")
    return unit == "bytes" and spec.split("-", 1)[0] == str(offset)


def _ignore(event: ProgressEvent) -> None:
    return None
