"""The local image store: content, snapshots and image records under one state dir.

    <root>/                       default_root(): /var/lib/berth (root), $XDG_DATA_HOME/berth
    ├── content/                  a blobstore.FilesystemBlobStore (the default `content`)
    │   ├── blobs/sha256/<ab>/<hex>
    │   └── ingest/<id>           downloads in progress
    ├── snapshots/                one unpacked layer per chain ID (see puller.snapshots)
    │   ├── <chain-id hex>/fs/    an overlayfs upper dir: usable as a lowerdir as is
    │   ├── <chain-id hex>/metadata.json
    │   ├── .tmp-<random>/        an unpack in progress
    │   └── .empty/               pads the overlay mount of a one-layer image
    ├── images.json               image records: reference -> manifest, config, chain IDs
    ├── images.lock               flock for writers of images.json
    └── containers/               reserved for the runtime

Images sharing layers share their blobs (content is keyed by digest) and their snapshots
(keyed by chain ID). Nothing is deleted by `remove`; `prune` drops what no record uses.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from blobstore import BlobNotFound, BlobStore, Digest, LocalBlobPaths, UploadNotFound
from blobstore.paths import blob_path
from puller.errors import ImageNotFound
from puller.limits import UnpackLimits
from puller.records import ImageRecord, RecordStore
from puller.snapshots import SnapshotStore
from registry_client.errors import InvalidReference
from registry_client.reference import parse_reference

if TYPE_CHECKING:
    from puller.progress import ProgressSink
    from puller.pushing import PushResult


class PruneReport(NamedTuple):
    blobs_deleted: int
    bytes_freed: int
    snapshots_deleted: int


class ImageStore:
    """Opens (creating if needed) the state dir at `root`. Blobs go to `content`, any
    BlobStore; by default a filesystem store under `root`, opened on first use. `limits`
    bound what each layer may unpack to (a refused layer's blob and unpack dir are deleted)."""

    def __init__(
        self,
        root: Path,
        content: BlobStore | None = None,
        /,
        *,
        limits: UnpackLimits | None = None,
        concurrency: int = 3,
    ) -> None:
        self.root = Path(root)
        self._content = content
        self.snapshots = SnapshotStore(self.root / "snapshots")
        self.records = RecordStore(self.root)
        self.limits = limits or UnpackLimits()
        self.concurrency = concurrency

    @functools.cached_property
    def content(self) -> BlobStore:
        """The content store (opened on first use: listing images needs only the records)."""
        if self._content is not None:
            return self._content
        from blobstore.filesystem import FilesystemBlobStore

        return FilesystemBlobStore(self.root / "content")

    def find(self, reference: str) -> ImageRecord | None:
        """The local image for `reference`, normalized as Docker does (`busybox` is
        `docker.io/library/busybox:latest`). A digest-only reference matches any record
        of that repository with that manifest (or index) digest."""
        ref = parse_reference(reference)
        found = self.records.get(str(ref))
        if found is not None or ref.digest is None:
            return found
        for record in self.records.all():
            if parse_reference(record.reference).name == ref.name and ref.digest in (
                record.manifest_digest,
                record.index_digest,
            ):
                return record
        return None

    def images(self) -> list[ImageRecord]:
        return self.records.all()

    async def pull(
        self,
        reference: str,
        *,
        platform: str | None = None,
        plain_http: bool = False,
        credentials: tuple[str, str] | None = None,
        progress: ProgressSink | None = None,
        all_platforms: bool = False,
    ) -> ImageRecord:
        """Pull `reference` into this store and record it; returns the record.
        `plain_http` forces HTTP; without it, loopback registries get HTTPS first (no
        certificate checks) then HTTP, as Docker does, and other hosts verified HTTPS.
        `all_platforms`: of an index, store every platform's manifest and blobs as well (only
        `platform`'s is unpacked), so that `push` can send the whole index."""
        import asyncio

        from puller.platforms import parse_platform
        from puller.pulling import PullOptions, pull_image  # aiohttp only when pulling

        ref = parse_reference(reference)
        options = PullOptions(
            platform=parse_platform(platform) if platform else None,
            plain_http=plain_http,
            credentials=credentials,
            concurrency=self.concurrency,
            limits=self.limits,
            all_platforms=all_platforms,
        )
        record = await pull_image(ref, self.content, self.snapshots, options, progress)
        await asyncio.to_thread(self.records.put, record)
        return record

    def image_config(self, record: ImageRecord) -> dict[str, Any]:
        """The parsed image config JSON, read straight from its file, without the driver or
        asyncio (`berth run` starts faster). For content in a store that is not local
        files, use `read_image_config`."""
        if self._content is None:
            path = blob_path(self.root / "content", record.config_digest)
        elif isinstance(self._content, LocalBlobPaths):
            path = self._content.blob_path(record.config_digest)
        else:
            raise TypeError("the content store is not local: use read_image_config")
        return _config_document(path.read_bytes(), record.config_digest)

    async def read_image_config(self, record: ImageRecord) -> dict[str, Any]:
        """The parsed image config JSON, from any content store (configs are a few KiB)."""
        chunks = [chunk async for chunk in self.content.read(record.config_digest)]
        return _config_document(b"".join(chunks), record.config_digest)

    def layer_dirs(self, record: ImageRecord) -> list[Path]:
        """Unpacked snapshot dirs, base layer first (overlay wants them reversed in lowerdir)."""
        return [self.snapshots.fs(chain_id) for chain_id in record.chain_ids]

    def tag(self, source: str, target: str) -> ImageRecord:
        """Record `target` as another name of the image `source` names (`docker tag`); an
        image already under `target` loses that name. Returns the new record."""
        found = self.find(source)
        if found is None:
            raise ImageNotFound(str(parse_reference(source)))
        ref = parse_reference(target)
        if ref.digest is not None:
            raise InvalidReference(target, "a tag target cannot hold a digest")
        record = found._replace(reference=str(ref))
        self.records.put(record)
        return record

    async def push(
        self,
        reference: str,
        *,
        plain_http: bool = False,
        credentials: tuple[str, str] | None = None,
        progress: ProgressSink | None = None,
    ) -> PushResult:
        """Push the local image `reference` to the registry its name says, as stored."""
        from puller.pushing import PushOptions, push_image  # aiohttp only when pushing

        record = self.find(reference)
        if record is None:
            raise ImageNotFound(str(parse_reference(reference)))
        options = PushOptions(
            plain_http=plain_http, credentials=credentials, concurrency=self.concurrency
        )
        target = parse_reference(record.reference)
        return await push_image(record, target, self.content, self.records.all(), options, progress)

    def remove(self, reference: str) -> ImageRecord:
        """Forget the image record (like `docker rmi`); data stays until `prune`."""
        ref = parse_reference(reference)
        record = self.find(reference)
        removed = self.records.delete(record.reference) if record is not None else None
        if removed is None:
            raise ImageNotFound(str(ref))
        return removed

    async def prune(self, *, grace: float = 3600.0) -> PruneReport:
        """Delete blobs and snapshots that no image record uses, and downloads or unpacks
        untouched for `grace` seconds (younger ones may belong to a pull still running)."""
        import asyncio  # loaded by the commands that pull or prune, not by those that list

        records = self.records.all()
        keep_blobs: set[Digest] = set()
        keep_snapshots: set[Digest] = set()
        for record in records:
            keep_blobs.update((record.manifest_digest, record.config_digest, *record.layers))
            if record.index_digest is not None:
                keep_blobs.update(await self._index_content(record.index_digest))
            keep_snapshots.update(record.chain_ids)
        blobs = freed = 0
        async for info in self.content.walk():
            if info.digest not in keep_blobs:
                await self.content.delete(info.digest)
                blobs += 1
                freed += info.size
        cutoff = time.time() - grace
        for upload_id in await self.content.idle_uploads(grace):
            with contextlib.suppress(UploadNotFound):
                await (await self.content.resume(upload_id)).abort()
        snapshots = 0
        for chain_id in await asyncio.to_thread(self.snapshots.walk):
            if chain_id not in keep_snapshots:
                await asyncio.to_thread(self.snapshots.remove, chain_id)
                snapshots += 1
        await asyncio.to_thread(self.snapshots.sweep_temporaries, cutoff)
        return PruneReport(blobs, freed, snapshots)

    async def _index_content(self, index_digest: Digest) -> set[Digest]:
        """The index and what of it is stored: its manifests and their blobs (all of them
        after `pull --all-platforms`, else the one platform's, which the record names)."""
        from puller.errors import UnsupportedManifest
        from puller.manifests import manifest_blobs, parse_index

        found = {index_digest}
        try:
            entries = parse_index(await self._read_small(index_digest))
            for entry in entries:
                blobs = manifest_blobs(await self._read_small(entry.digest))
                found.add(entry.digest)
                found.update(blob.digest for blob in blobs)
        except (BlobNotFound, UnsupportedManifest):
            pass  # only partly stored: the rest is in the record
        return found

    async def _read_small(self, digest: Digest) -> bytes:
        return b"".join([chunk async for chunk in self.content.read(digest)])


def _config_document(raw: bytes, digest: Digest) -> dict[str, Any]:
    document = json.loads(raw)
    if not isinstance(document, dict):
        raise ValueError(f"image config {digest} is not a JSON object")
    return document
