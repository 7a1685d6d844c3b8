"""Pushing a locally stored image to a registry, byte for byte as it is stored.

The manifest (or the index it was chosen from, when every manifest the index lists is stored
with its blobs) goes up unchanged, and so do the config and the layers (compressed, as
pulled), so the digests the registry reports are the ones the image was pulled with. Each
blob: HEAD first and skip when the repository has it; a cross-repository mount when another
local image of the same blob came from (or went to) another repository of that registry;
else an upload streamed from the content store (registry_client.upload).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from blobstore import BlobNotFound, BlobStore, Digest
from puller.connect import registry_client
from puller.errors import AuthenticationFailed, ContentMissing, UnsupportedManifest
from puller.manifests import Descriptor, manifest_blobs, media_type_of, parse_index
from puller.progress import Phase, ProgressEvent, ProgressSink
from puller.records import ImageRecord
from registry_client import mediatypes
from registry_client.client import RegistryClient
from registry_client.reference import Reference, parse_reference
from registry_client.upload import (
    DEFAULT_CHUNK_SIZE,
    blob_exists,
    mount_blob,
    put_manifest,
    upload_blob,
)

_MAX_MANIFEST = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class PushOptions:
    plain_http: bool = False
    credentials: tuple[str, str] | None = None
    concurrency: int = 3
    chunk_size: int = DEFAULT_CHUNK_SIZE


@dataclass(frozen=True, slots=True)
class PushResult:
    target: Reference
    digest: Digest  # of what was pushed under the tag: the index or the manifest
    size: int  # of that manifest or index, in bytes
    media_type: str
    whole_index: bool  # False when an index was stored but only one platform could go


@dataclass(frozen=True, slots=True)
class _Manifest:
    digest: Digest
    body: bytes
    media_type: str
    blobs: tuple[Descriptor, ...]  # config first, then layers


async def push_image(
    record: ImageRecord,
    target: Reference,
    content: BlobStore,
    others: Sequence[ImageRecord],
    options: PushOptions,
    progress: ProgressSink | None = None,
) -> PushResult:
    """Push the image of `record` to `target` (a tag, or a digest). `others` are the local
    image records, for mount sources."""
    report = progress or (lambda event: None)
    manifests, index = await _what_to_push(record, content)
    sources = _mount_sources(target, others)
    async with registry_client(
        target, plain_http=options.plain_http, credentials=options.credentials, read_timeout=300
    ) as client:
        blobs: dict[Digest, tuple[Descriptor, bool]] = {}
        for manifest in manifests:
            for position, blob in enumerate(manifest.blobs):
                shown = position > 0 or blobs.get(blob.digest, (blob, False))[1]
                blobs[blob.digest] = (blob, shown)
        for blob, shown in blobs.values():
            if shown:
                report(ProgressEvent(Phase.PREPARING, blob.digest, 0, blob.size))
        limit = asyncio.Semaphore(max(options.concurrency, 1))

        async def send(blob: Descriptor, shown: bool) -> None:
            async with limit:
                await _push_blob(
                    client,
                    content,
                    target.repository,
                    blob,
                    sources.get(blob.digest),
                    options,
                    report if shown else (lambda event: None),
                )

        tasks = [asyncio.create_task(send(blob, shown)) for blob, shown in blobs.values()]
        try:
            await asyncio.gather(*tasks)  # the first failure is the one reported
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for manifest in manifests:
            if index is not None or target.tag is None:
                await put_manifest(
                    client,
                    target.repository,
                    str(manifest.digest),
                    manifest.body,
                    manifest.media_type,
                )
        top = index or manifests[0]
        if target.tag is not None:
            await put_manifest(client, target.repository, target.tag, top.body, top.media_type)
    return PushResult(
        target,
        top.digest,
        len(top.body),
        top.media_type,
        whole_index=record.index_digest is None or index is not None,
    )


async def _push_blob(
    client: RegistryClient,
    content: BlobStore,
    repository: str,
    blob: Descriptor,
    source: str | None,
    options: PushOptions,
    report: ProgressSink,
) -> None:
    digest, size = blob.digest, blob.size
    if await blob_exists(client, repository, digest):
        report(ProgressEvent(Phase.EXISTS, digest, size, size))
        return
    location: str | None = None
    if source is not None:
        try:
            location = await mount_blob(client, repository, digest, source)
        except AuthenticationFailed:
            pass  # not allowed to read `source` (Distribution answers 401): upload instead
        else:
            if location is None:
                report(ProgressEvent(Phase.MOUNTED, digest, size, size, source))
                return
    try:
        await content.stat(digest)
    except BlobNotFound:
        raise ContentMissing(digest) from None
    report(ProgressEvent(Phase.PUSHING, digest, 0, size))
    await upload_blob(
        client,
        repository,
        digest,
        size,
        lambda start, end: content.read(digest, start, end),
        location=location,
        chunk_size=options.chunk_size,
        progress=lambda sent: report(ProgressEvent(Phase.PUSHING, digest, sent, size)),
    )
    report(ProgressEvent(Phase.PUSHED, digest, size, size))


async def _what_to_push(
    record: ImageRecord, content: BlobStore
) -> tuple[list[_Manifest], _Manifest | None]:
    """The manifests to push and the index over them: the whole stored index when every
    manifest it lists is stored with all its blobs, else the record's manifest alone."""
    own = await _manifest(content, record.manifest_digest)
    if record.index_digest is None:
        return [own], None
    try:
        body = await _read_small(content, record.index_digest)
    except BlobNotFound:
        return [own], None
    entries = parse_index(body)
    manifests: list[_Manifest] = []
    for entry in entries:
        if entry.media_type not in mediatypes.MANIFESTS:
            return [own], None
        try:
            manifest = await _manifest(content, entry.digest)
            await _all_stored(content, manifest.blobs)
        except BlobNotFound:
            return [own], None
        manifests.append(manifest)
    index = _Manifest(record.index_digest, body, media_type_of(body, None), ())
    return manifests, index


async def _manifest(content: BlobStore, digest: Digest) -> _Manifest:
    body = await _read_small(content, digest)
    media_type = media_type_of(body, None)
    if media_type not in mediatypes.MANIFESTS:
        raise UnsupportedManifest(f"{digest} is not an image manifest ({media_type})")
    return _Manifest(digest, body, media_type, manifest_blobs(body))


async def _all_stored(content: BlobStore, blobs: Iterable[Descriptor]) -> None:
    for blob in blobs:
        await content.stat(blob.digest)


async def _read_small(content: BlobStore, digest: Digest) -> bytes:
    data = bytearray()
    async for chunk in content.read(digest):
        data += chunk
        if len(data) > _MAX_MANIFEST:
            raise UnsupportedManifest(f"manifest {digest} is larger than 4 MiB")
    return bytes(data)


def _mount_sources(target: Reference, records: Sequence[ImageRecord]) -> dict[Digest, str]:
    """For each blob, another repository of the target's registry that a local image of it
    was pulled from or tagged for: where the registry can mount it from."""
    sources: dict[Digest, str] = {}
    for record in records:
        ref = parse_reference(record.reference)
        if ref.registry != target.registry or ref.repository == target.repository:
            continue
        for digest in (record.config_digest, *record.layers):
            sources.setdefault(digest, ref.repository)
    return sources
