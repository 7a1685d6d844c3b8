"""Pulling one image: resolve the manifest, fetch blobs concurrently, unpack in order."""

from __future__ import annotations

import asyncio
import datetime
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from blobstore import BlobStore, Digest, InvalidDigest
from puller.chain import chain_ids
from puller.connect import registry_client
from puller.errors import DiffIDMismatch, LayerRejected, RegistryError, UnsupportedManifest
from puller.limits import UnpackLimits
from puller.manifests import (
    Descriptor,
    ImageManifest,
    manifest_blobs,
    media_type_of,
    parse_index,
    parse_manifest,
    select_platform,
)
from puller.platforms import Platform, host_platform
from puller.progress import Phase, ProgressEvent, ProgressSink
from puller.records import ImageRecord
from puller.snapshots import SnapshotInfo, SnapshotStore
from puller.transfer import ensure_blob
from puller.unpack import BlobFile, apply_layer
from registry_client import mediatypes
from registry_client.client import RegistryClient
from registry_client.reference import Reference


@dataclass(frozen=True, slots=True)
class PullOptions:
    platform: Platform | None = None
    plain_http: bool = False
    credentials: tuple[str, str] | None = None
    concurrency: int = 3
    limits: UnpackLimits = field(default_factory=UnpackLimits)
    all_platforms: bool = False  # of an index, store every manifest and its blobs too


async def pull_image(
    ref: Reference,
    content: BlobStore,
    snapshots: SnapshotStore,
    options: PullOptions,
    progress: ProgressSink | None = None,
) -> ImageRecord:
    report = progress or (lambda event: None)
    async with registry_client(
        ref, plain_http=options.plain_http, credentials=options.credentials
    ) as client:
        index, manifest_digest, manifest = await _resolve(
            client, content, ref, options.platform or host_platform()
        )
        index_digest = index[0] if index is not None else None
        report(ProgressEvent(Phase.RESOLVED, manifest_digest, 0, len(manifest.layers)))
        await ensure_blob(
            client, content, ref.repository, manifest.config.digest, manifest.config.size
        )
        config = await read_json(content, manifest.config.digest)
        diff_ids = _diff_ids(config, len(manifest.layers))
        limit = asyncio.Semaphore(max(options.concurrency, 1))

        async def download(layer: Descriptor) -> None:
            async with limit:
                await ensure_blob(client, content, ref.repository, layer.digest, layer.size, report)

        downloads = [asyncio.create_task(download(layer)) for layer in manifest.layers]
        if options.all_platforms and index is not None:
            others = [e for e in index[1] if e.digest != manifest_digest]
            downloads += [
                asyncio.create_task(_store_other(client, content, ref, e, download)) for e in others
            ]
        try:
            size = await _unpack_all(
                manifest, diff_ids, downloads, content, snapshots, options.limits, report
            )
            await asyncio.gather(*downloads)  # other platforms' content, if asked for
        finally:
            for task in downloads:
                task.cancel()
            await asyncio.gather(*downloads, return_exceptions=True)
    return ImageRecord(
        reference=str(ref),
        manifest_digest=manifest_digest,
        config_digest=manifest.config.digest,
        layers=tuple(layer.digest for layer in manifest.layers),
        chain_ids=tuple(chain_ids(diff_ids)),
        size=size,
        created=str(config.get("created") or ""),
        pulled=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        index_digest=index_digest,
    )


async def _store_other(
    client: RegistryClient,
    content: BlobStore,
    ref: Reference,
    entry: Descriptor,
    download: Callable[[Descriptor], Awaitable[None]],
) -> None:
    """Another manifest of the index, with its config and layers (stored, not unpacked)."""
    if entry.media_type not in mediatypes.MANIFESTS:
        return  # not an image: nothing Berth can use or push
    body, _ = await client.get_manifest(ref.repository, str(entry.digest))
    await _store_manifest(content, body, entry.digest, f"{ref} ({entry.platform})")
    for blob in manifest_blobs(body):
        await download(blob)


async def _resolve(
    client: RegistryClient, content: BlobStore, ref: Reference, platform: Platform
) -> tuple[tuple[Digest, list[Descriptor]] | None, Digest, ImageManifest]:
    """The image manifest for `platform` (stored), and the index it came from if any: its
    digest and entries."""
    body, content_type = await client.get_manifest(ref.repository, ref.target)
    digest = await _store_manifest(content, body, ref.digest, f"{ref}")
    media_type = media_type_of(body, content_type)
    index = None
    if media_type in mediatypes.INDEXES:
        entries = parse_index(body)
        index = (digest, entries)
        chosen = select_platform(entries, platform)
        body, content_type = await client.get_manifest(ref.repository, str(chosen.digest))
        digest = await _store_manifest(content, body, chosen.digest, f"{ref} ({platform})")
        media_type = media_type_of(body, content_type)
    if media_type not in mediatypes.MANIFESTS:
        raise UnsupportedManifest(f"{ref}: unsupported manifest media type {media_type!r}")
    return index, digest, parse_manifest(body, media_type)


async def _store_manifest(
    content: BlobStore, body: bytes, expected: Digest | None, what: str
) -> Digest:
    digest = Digest.of(body, expected.algorithm if expected else "sha256")
    if expected is not None and digest != expected:
        raise RegistryError(
            f"{what}: registry sent a manifest with digest {digest}, not {expected}"
        )
    upload = await content.begin()
    try:
        await upload.write(body)
        await upload.commit(digest, len(body))
    finally:
        await upload.abort()
    return digest


async def read_json(content: BlobStore, digest: Digest) -> dict[str, Any]:
    """A small JSON blob (a config) from the content store."""
    data = bytearray()
    async for chunk in content.read(digest):
        data += chunk
        if len(data) > 16 * 1024 * 1024:
            raise UnsupportedManifest(f"image config {digest} is larger than 16 MiB")
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise UnsupportedManifest(f"image config {digest} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise UnsupportedManifest(f"image config {digest} is not a JSON object")
    return document


def _diff_ids(config: dict[str, Any], layer_count: int) -> list[Digest]:
    rootfs = config.get("rootfs")
    values = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(values, list) or len(values) != layer_count:
        raise UnsupportedManifest(
            f"image config lists {len(values or [])} diff_ids for {layer_count} layers"
        )
    try:
        return [Digest.parse(str(value)) for value in values]
    except InvalidDigest as exc:
        raise UnsupportedManifest(f"image config: {exc}") from None


async def _unpack_all(
    manifest: ImageManifest,
    diff_ids: list[Digest],
    downloads: list[asyncio.Task[None]],
    content: BlobStore,
    snapshots: SnapshotStore,
    limits: UnpackLimits,
    report: ProgressSink,
) -> int:
    total = 0
    chain = chain_ids(diff_ids)
    loop = asyncio.get_running_loop()
    for index, (layer, diff_id, chain_id) in enumerate(
        zip(manifest.layers, diff_ids, chain, strict=True)
    ):
        await downloads[index]
        if snapshots.exists(chain_id):
            total += snapshots.info(chain_id).size
            report(ProgressEvent(Phase.UNPACKED, layer.digest, index, len(chain), "exists"))
            continue
        report(ProgressEvent(Phase.UNPACKING, layer.digest, index, len(chain)))
        lowers = [snapshots.fs(c) for c in reversed(chain[:index])]
        with snapshots.prepare() as tmp:
            blob = BlobFile(content, layer.digest, loop)
            try:
                size = await asyncio.to_thread(
                    apply_layer,
                    blob,
                    layer=layer.digest,
                    compression=mediatypes.LAYER_COMPRESSION[layer.media_type],
                    diff_id=diff_id,
                    upper=tmp / "fs",
                    lowers=lowers,
                    limits=limits,
                )
            except (LayerRejected, DiffIDMismatch):
                await content.delete(layer.digest)  # refused content is kept nowhere
                raise
            finally:
                blob.close()
            info = SnapshotInfo(
                chain_id=str(chain_id),
                parent=str(chain[index - 1]) if index else None,
                diff_id=str(diff_id),
                layer=str(layer.digest),
                size=size,
                created=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
            await asyncio.to_thread(snapshots.commit, tmp, info)
        total += size
        report(ProgressEvent(Phase.UNPACKED, layer.digest, index, len(chain)))
    return total
