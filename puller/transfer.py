"""Downloading blobs into the local content store, verified and resumable.

A blob streams from the registry (registry_client.transfer.verified_blob) into a content-store
`Upload`; nothing is readable in the store before the digest and size check passed. When the
connection drops mid-blob, the download continues from the bytes already written.
"""

from __future__ import annotations

import contextlib

from blobstore import BlobNotFound, BlobStore, Digest, DigestMismatch, SizeMismatch
from puller.progress import Phase, ProgressEvent, ProgressSink
from registry_client.client import RegistryClient
from registry_client.errors import RegistryError
from registry_client.transfer import verified_blob


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

    def retrying(kept: int, detail: str) -> None:
        report(ProgressEvent(Phase.RETRYING, digest, kept, size, detail))

    source = verified_blob(client, repository, digest, size, lambda: upload.size, retrying)
    try:
        # closed here, in this task, even when verification stops reading mid-response
        async with contextlib.aclosing(source):
            async for chunk in source:
                await upload.write(chunk)
                report(ProgressEvent(Phase.DOWNLOADING, digest, upload.size, size))
        await upload.commit(digest, size)
    except (DigestMismatch, SizeMismatch) as exc:
        raise RegistryError(f"blob {digest}: the registry sent other bytes ({exc})") from None
    finally:
        await upload.abort()
    report(ProgressEvent(Phase.DOWNLOADED, digest, size, size))
    return True


def _ignore(event: ProgressEvent) -> None:
    return None
