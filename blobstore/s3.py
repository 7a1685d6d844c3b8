"""A blobstore in an S3 bucket (AWS S3, SeaweedFS, MinIO...), through aiobotocore.

aiobotocore is botocore (the AWS SDK's request signing, retries, error model and every
S3-compatible quirk it knows) on aiohttp, which Berth already runs on: one event loop, no
threads per request, and the same client CNCF Distribution's peers use.

Layout under `rootdirectory` in the bucket, as Distribution lays out its blobs (every key is
built by `_blob_key` or `_upload_prefix`):

    <root>/docker/registry/v2/
    ├── blobs/<algorithm>/<first two hex>/<hex>/data    a committed, verified blob
    └── uploads/<upload id>/                            an upload in progress
        ├── data          the multipart upload's key (S3 keeps its parts until completed)
        └── tail-<P>      the bytes past the last full part, which started at offset P

Writing follows Distribution's s3 writer: parts of `chunk_size` bytes (S3 wants at least
5 MiB for every part but the last) go into the multipart upload as they fill; what is left
when a request ends becomes a part too if it has 5 MiB (a client's 8 MiB chunks are 8 MiB
parts), or else is stored as `tail-<P>`, in the bucket and never on one replica's disk,
and read back by whichever replica takes the next chunk. The progress (S3's upload id, the
parts' ETags, the tail's length and the sha256 context) is `Upload.state()`, which the
caller saves with the upload session; a tail is never overwritten with other bytes under the
same offset, so a state saved earlier stays valid if a later request died half way.

A blob becomes visible under its digest only after its digest is verified: small blobs (no
full part) are put there directly from memory; larger ones complete the multipart upload
at the upload's `data` key, which is then copied server-side to the blob's key. An upload
that fails or is cancelled aborts its multipart upload and deletes its prefix.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from blobstore.digest import Digest
from blobstore.errors import (
    BlobNotFound,
    DigestMismatch,
    InvalidRange,
    SizeMismatch,
    UploadNotFound,
)
from blobstore.hashstate import ResumableHash
from blobstore.protocol import BlobInfo
from blobstore.upload_ids import UPLOAD_ID, new_upload_id

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import CopySourceTypeDef

MIN_CHUNK_SIZE: Final = 5 << 20  # S3's smallest part but the last
_READ_CHUNK: Final = 1 << 20
_MAX_COPY_OBJECT: Final = 5 << 30  # CopyObject's limit; larger blobs are copied in parts
_COPY_PART: Final = 1 << 30
_NOT_FOUND: Final = {"NoSuchKey", "404", "NotFound"}
_PRESIGN_SECONDS: Final = 20 * 60  # Distribution's expiry for redirect URLs


@dataclass(frozen=True, slots=True)
class S3Options:
    """Where and how to reach the bucket (Distribution's `storage.s3` keys, checked)."""

    bucket: str
    region: str
    endpoint_url: str | None = None
    access_key: str = ""
    secret_key: str = ""
    root: str = ""
    path_style: bool = False
    use_ssl: bool = True
    verify_tls: bool = True
    v4_auth: bool = True
    chunk_size: int = 10 << 20
    storage_class: str | None = "STANDARD"

    def __post_init__(self) -> None:
        if self.chunk_size < MIN_CHUNK_SIZE:
            raise ValueError(f"chunk size {self.chunk_size} is below S3's minimum part size")


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class S3BlobStore:
    """Blobs in one bucket. Many processes and replicas may share it. Call `close()` at the end."""

    def __init__(self, options: S3Options) -> None:
        self.options = options
        self.bucket = options.bucket
        root = options.root.strip("/")
        self._base = f"{root}/docker/registry/v2/" if root else "docker/registry/v2/"
        self._stack = contextlib.AsyncExitStack()
        self._client: S3Client | None = None

    # -- the client ---------------------------------------------------------------------------

    async def client(self) -> S3Client:
        if self._client is None:
            o = self.options
            config = AioConfig(
                region_name=o.region,
                signature_version="s3v4" if o.v4_auth else "s3",
                s3={"addressing_style": "path" if o.path_style else "auto"},
                max_pool_connections=64,
                # S3-compatible servers differ on the newer optional checksums; S3 needs none.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            )
            creator = get_session().create_client(
                "s3",
                endpoint_url=o.endpoint_url,
                use_ssl=o.use_ssl,
                aws_access_key_id=o.access_key or None,
                aws_secret_access_key=o.secret_key or None,
                verify=o.verify_tls,
                config=config,
            )
            client = await self._stack.enter_async_context(creator)
            if self._client is None:
                self._client = client
        return self._client

    async def close(self) -> None:
        self._client = None
        await self._stack.aclose()

    # -- keys ---------------------------------------------------------------------------------

    def _blob_key(self, digest: Digest) -> str:
        return f"{self._base}blobs/{digest.algorithm}/{digest.hex[:2]}/{digest.hex}/data"

    def _upload_prefix(self, upload_id: str) -> str:
        if not UPLOAD_ID.fullmatch(upload_id):
            raise UploadNotFound(upload_id)
        return f"{self._base}uploads/{upload_id}/"

    def _put_args(self) -> dict[str, Any]:
        sc = self.options.storage_class
        return {"StorageClass": sc} if sc else {}

    # -- reading ------------------------------------------------------------------------------

    async def stat(self, digest: Digest) -> BlobInfo:
        s3 = await self.client()
        try:
            head = await s3.head_object(Bucket=self.bucket, Key=self._blob_key(digest))
        except ClientError as exc:
            if _code(exc) in _NOT_FOUND:
                raise BlobNotFound(digest) from None
            raise
        return BlobInfo(digest, int(head["ContentLength"]))

    async def read(
        self, digest: Digest, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        if start < 0 or (end is not None and end <= start):
            size = (await self.stat(digest)).size
            if start < 0 or end is None or end < start or end > size:
                raise InvalidRange(start, end, size)
            return  # an empty range inside the blob
        s3 = await self.client()
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self._blob_key(digest)}
        if start or end is not None:
            args["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            response = await s3.get_object(**args)
        except ClientError as exc:
            if _code(exc) in _NOT_FOUND:
                raise BlobNotFound(digest) from None
            if _code(exc) != "InvalidRange":
                raise
            size = (await self.stat(digest)).size
            if start == size and end is None:
                return  # S3 refuses `bytes=<size>-`; it is the empty tail of the blob
            raise InvalidRange(start, end, size) from None
        async with response["Body"] as body:
            content_range = response.get("ContentRange")
            total = int(content_range.rsplit("/", 1)[1]) if content_range else None
            if end is not None and total is not None and end > total:
                raise InvalidRange(start, end, total)
            async for chunk in body.iter_chunks(_READ_CHUNK):
                yield chunk

    async def url_for(self, digest: Digest, expires: int = _PRESIGN_SECONDS) -> str:
        """A presigned GET URL of the blob, for clients to be redirected to."""
        s3 = await self.client()
        return await s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self._blob_key(digest)},
            ExpiresIn=expires,
        )

    async def walk(self) -> AsyncIterator[BlobInfo]:
        prefix = f"{self._base}blobs/"
        async for key, size in self._list(prefix):
            parts = key[len(prefix) :].split("/")
            if len(parts) != 4 or parts[3] != "data" or parts[1] != parts[2][:2]:
                continue
            try:
                yield BlobInfo(Digest(parts[0], parts[2]), size)
            except ValueError:
                continue

    async def _list(self, prefix: str) -> AsyncIterator[tuple[str, int]]:
        s3 = await self.client()
        paginator = s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"], int(item["Size"])

    # -- writing ------------------------------------------------------------------------------

    async def begin(self) -> S3Upload:
        # Nothing is created in the bucket until a part is full or the upload is closed, so a
        # small blob uploaded in one go costs a HEAD and a PUT.
        progress = _Progress(None, [], 0)
        return S3Upload(self, new_upload_id(), progress, ResumableHash.new(), local=True)

    async def resume(self, upload_id: str, state: bytes | None = None) -> S3Upload:
        prefix = self._upload_prefix(upload_id)
        s3 = await self.client()
        progress = _Progress.load(state) if state else None
        if progress is None or progress.multipart is None:
            return await self._rebuild(upload_id)
        try:  # the one round trip of a resume: is the upload still there?
            await s3.list_parts(
                Bucket=self.bucket, Key=prefix + "data", UploadId=progress.multipart, MaxParts=1
            )
        except ClientError as exc:
            if _code(exc) in {"NoSuchUpload", *_NOT_FOUND}:
                raise UploadNotFound(upload_id) from None
            raise
        hasher = None
        if progress.hash is not None:
            hasher = ResumableHash.resume("sha256", bytes.fromhex(progress.hash))
        return S3Upload(self, upload_id, progress, hasher, checked=True)

    async def open_upload(self, upload_id: str) -> S3Upload:
        try:
            return await self._rebuild(upload_id)
        except UploadNotFound:
            if not UPLOAD_ID.fullmatch(upload_id):
                raise
        # Nothing in the bucket yet: begun here, as `begin` does.
        return S3Upload(self, upload_id, _Progress(None, [], 0), ResumableHash.new(), local=True)

    async def _rebuild(self, upload_id: str) -> S3Upload:
        """Resume without a saved state, from what the bucket holds (commit hashes again)."""
        key = self._upload_prefix(upload_id) + "data"
        s3 = await self.client()
        listing = await s3.list_multipart_uploads(Bucket=self.bucket, Prefix=key)
        found = [u["UploadId"] for u in listing.get("Uploads", []) if u.get("Key") == key]
        if not found:
            raise UploadNotFound(upload_id)
        parts: list[tuple[str, int]] = []
        paginator = s3.get_paginator("list_parts")
        async for page in paginator.paginate(Bucket=self.bucket, Key=key, UploadId=found[0]):
            parts.extend((p["ETag"], int(p["Size"])) for p in page.get("Parts", []))
        offset = sum(size for _, size in parts)
        tail = 0
        with contextlib.suppress(ClientError):
            head = await s3.head_object(Bucket=self.bucket, Key=f"{key[:-4]}tail-{offset}")
            tail = int(head["ContentLength"])
        return S3Upload(self, upload_id, _Progress(found[0], parts, tail), None, checked=True)

    async def delete(self, digest: Digest) -> None:
        s3 = await self.client()
        await s3.delete_object(Bucket=self.bucket, Key=self._blob_key(digest))

    async def _exists(self, key: str) -> bool:
        s3 = await self.client()
        try:
            await s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in _NOT_FOUND:
                return False
            raise
        return True

    async def _copy(self, source: str, target: str, size: int) -> None:
        s3 = await self.client()
        copy_source: CopySourceTypeDef = {"Bucket": self.bucket, "Key": source}
        if size <= _MAX_COPY_OBJECT:
            await s3.copy_object(
                Bucket=self.bucket, Key=target, CopySource=copy_source, **self._put_args()
            )
            return
        created = await s3.create_multipart_upload(
            Bucket=self.bucket, Key=target, **self._put_args()
        )
        multipart = created["UploadId"]
        try:
            parts = []
            for number, first in enumerate(range(0, size, _COPY_PART), start=1):
                last = min(first + _COPY_PART, size) - 1
                copied = await s3.upload_part_copy(
                    Bucket=self.bucket,
                    Key=target,
                    UploadId=multipart,
                    PartNumber=number,
                    CopySource=copy_source,
                    CopySourceRange=f"bytes={first}-{last}",
                )
                parts.append({"ETag": copied["CopyPartResult"]["ETag"], "PartNumber": number})
            await s3.complete_multipart_upload(
                Bucket=self.bucket,
                Key=target,
                UploadId=multipart,
                MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]  # ETag, PartNumber
            )
        except BaseException:
            with contextlib.suppress(ClientError):
                await s3.abort_multipart_upload(Bucket=self.bucket, Key=target, UploadId=multipart)
            raise

    async def _discard(
        self, upload_id: str, multipart: str | None, *, tails: bool = True, completed: bool = False
    ) -> None:
        """Abort the multipart upload (if not completed) and delete the upload's prefix
        (`tails` False: no tail was ever stored there; `completed`: the `data` object is)."""
        s3 = await self.client()
        prefix = self._upload_prefix(upload_id)
        if multipart is not None:
            with contextlib.suppress(ClientError):
                await s3.abort_multipart_upload(
                    Bucket=self.bucket, Key=prefix + "data", UploadId=multipart
                )
        if tails:
            keys = [key async for key, _ in self._list(prefix)]
        else:
            keys = [prefix + "data"] if completed else []
        for first in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[first : first + 1000]]
            await s3.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})  # type: ignore[typeddict-item]  # Key only

    async def idle_uploads(self, seconds: float) -> list[str]:
        s3 = await self.client()
        cutoff = datetime.now(UTC) - timedelta(seconds=seconds)
        paginator = s3.get_paginator("list_multipart_uploads")
        prefix = f"{self._base}uploads/"
        idle = []
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for upload in page.get("Uploads", []):
                upload_id = upload["Key"][len(prefix) :].split("/")[0]
                if upload["Initiated"] >= cutoff or not UPLOAD_ID.fullmatch(upload_id):
                    continue
                # started long ago, but a long upload may still be writing parts
                if await self._last_part_written(upload["Key"], upload["UploadId"]) < cutoff:
                    idle.append(upload_id)
        return idle

    async def _last_part_written(self, key: str, multipart: str) -> datetime:
        s3 = await self.client()
        latest = datetime.min.replace(tzinfo=UTC)
        paginator = s3.get_paginator("list_parts")
        async for page in paginator.paginate(Bucket=self.bucket, Key=key, UploadId=multipart):
            for part in page.get("Parts", []):
                latest = max(latest, part["LastModified"])
        return latest

    async def multipart_uploads(self) -> list[str]:
        """Keys of every multipart upload in progress under the root (for leftover checks)."""
        s3 = await self.client()
        paginator = s3.get_paginator("list_multipart_uploads")
        keys: list[str] = []
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=self._base):
            keys.extend(u["Key"] for u in page.get("Uploads", []))
        return keys


@dataclass(slots=True)
class _Progress:
    """What `Upload.state()` carries: S3's upload id, the parts so far, the tail's length
    and, when the hasher can be saved, the sha256 context over exactly those bytes."""

    multipart: str | None  # None until created (a fresh upload that has stored nothing)
    parts: list[tuple[str, int]]  # (ETag, size), part numbers 1..n
    tail: int
    hash: str | None = None

    @property
    def parts_size(self) -> int:
        return sum(size for _, size in self.parts)

    def dump(self) -> bytes:
        return json.dumps(
            {"multipart": self.multipart, "parts": self.parts, "tail": self.tail, "hash": self.hash}
        ).encode()

    @classmethod
    def load(cls, state: bytes) -> _Progress | None:
        try:
            raw = json.loads(state)
            parts = [(str(etag), int(size)) for etag, size in raw["parts"]]
            if not isinstance(raw["multipart"], str):
                return None
            return cls(raw["multipart"], parts, int(raw["tail"]), raw.get("hash"))
        except (ValueError, KeyError, TypeError):
            return None


class S3Upload:
    """One handle on an upload in progress. Not safe for two writers at once."""

    def __init__(
        self,
        store: S3BlobStore,
        upload_id: str,
        progress: _Progress,
        hasher: ResumableHash | None,
        *,
        local: bool = False,
        checked: bool = False,
    ) -> None:
        self._store = store
        self._id = upload_id
        self._key = store._upload_prefix(upload_id) + "data"
        self._progress = progress
        self._hasher = hasher
        self._buffer: bytearray | None = None  # the tail, once read back or written to
        self._dirty = False  # the buffer holds bytes not yet stored as tail-<parts_size>
        self._done = False
        # Begun here and never closed: no other handle knows it and no tail was stored.
        self._local = local
        self._checked = checked  # resume() has just seen the multipart upload exist

    @property
    def id(self) -> str:
        return self._id

    @property
    def size(self) -> int:
        tail = self._progress.tail if self._buffer is None else len(self._buffer)
        return self._progress.parts_size + tail

    def state(self) -> bytes:
        """The progress as stored in the bucket by the last close() (or resume)."""
        progress = self._progress
        if progress.multipart is None:
            raise RuntimeError(f"upload {self._id}: state() before close()")
        if self._hasher is not None and not self._dirty:
            progress.hash = self._hasher.state().hex()
        else:
            progress.hash = None
        return progress.dump()

    def _tail_key(self) -> str:
        return f"{self._key[:-4]}tail-{self._progress.parts_size}"

    async def _tail(self) -> bytearray:
        if self._done:
            raise UploadNotFound(self._id)
        if self._buffer is None:
            self._buffer = bytearray()
            if self._progress.tail:
                s3 = await self._store.client()
                try:
                    response = await s3.get_object(
                        Bucket=self._store.bucket,
                        Key=self._tail_key(),
                        Range=f"bytes=0-{self._progress.tail - 1}",
                    )
                except ClientError as exc:
                    self._buffer = None
                    if _code(exc) in _NOT_FOUND:
                        raise UploadNotFound(self._id) from None
                    raise
                async with response["Body"] as body:
                    self._buffer += await body.read()
        return self._buffer

    async def write(self, chunk: bytes) -> None:
        buffer = await self._tail()
        if self._hasher is not None:
            self._hasher.update(chunk)
        buffer += chunk
        self._dirty = True
        chunk_size = self._store.options.chunk_size
        while len(buffer) >= chunk_size:
            # The buffer is dropped before the upload, so a part's bytes are held once.
            with memoryview(buffer) as view:
                part, rest = bytes(view[:chunk_size]), bytearray(view[chunk_size:])
            buffer = self._buffer = rest
            try:
                await self._upload_part(part)
            except BaseException:
                self._buffer = bytearray(part) + rest  # keep every byte the hasher has seen
                raise

    async def _ensure_multipart(self) -> str:
        if self._progress.multipart is None:
            s3 = await self._store.client()
            created = await s3.create_multipart_upload(
                Bucket=self._store.bucket, Key=self._key, **self._store._put_args()
            )
            self._progress.multipart = created["UploadId"]
        return self._progress.multipart

    async def _upload_part(self, data: bytes) -> None:
        multipart = await self._ensure_multipart()
        s3 = await self._store.client()
        number = len(self._progress.parts) + 1
        try:
            uploaded = await s3.upload_part(
                Bucket=self._store.bucket,
                Key=self._key,
                UploadId=multipart,
                PartNumber=number,
                Body=data,
            )
        except ClientError as exc:
            if _code(exc) in {"NoSuchUpload", *_NOT_FOUND}:
                self._done = True
                raise UploadNotFound(self._id) from None
            raise
        self._progress.parts.append((uploaded["ETag"], len(data)))
        self._progress.tail = 0

    async def close(self) -> None:
        if self._done:
            return
        await self._ensure_multipart()  # the upload's mark in the bucket, for resume()
        self._local = False
        if self._buffer is None:
            return
        if len(self._buffer) >= MIN_CHUNK_SIZE:  # big enough for a part of its own
            part, self._buffer = bytes(self._buffer), bytearray()
            try:
                await self._upload_part(part)
            except BaseException:
                self._buffer = bytearray(part)
                raise
        if self._dirty:
            if self._buffer:
                s3 = await self._store.client()
                await s3.put_object(
                    Bucket=self._store.bucket,
                    Key=self._tail_key(),
                    Body=bytes(self._buffer),
                )
            self._progress.tail = len(self._buffer)
            self._dirty = False
        self._buffer = None

    async def commit(self, expected: Digest, size: int | None = None) -> BlobInfo:
        buffer = await self._tail()
        store = self._store
        s3 = await store.client()
        completed = False
        try:
            total = self._progress.parts_size + len(buffer)
            if size is not None and size != total:
                raise SizeMismatch(size, total)
            actual: Digest | None = None
            if self._hasher is not None and self._hasher.name == expected.algorithm:
                actual = Digest(expected.algorithm, self._hasher.hexdigest())
            elif not self._progress.parts:
                actual = Digest(
                    expected.algorithm, hashlib.new(expected.algorithm, buffer).hexdigest()
                )
            if actual is not None and actual != expected:
                raise DigestMismatch(expected, actual)
            target = store._blob_key(expected)
            if not self._progress.parts:
                if not (self._local or self._checked):
                    await self._require_multipart()
                if not await store._exists(target):
                    await s3.put_object(
                        Bucket=store.bucket,
                        Key=target,
                        Body=bytes(buffer),
                        **store._put_args(),
                    )
            else:
                if buffer:
                    await self._upload_part(bytes(buffer))
                await self._complete()
                completed = True
                if actual is None:
                    actual = await self._hash_object(expected.algorithm)
                    if actual != expected:
                        raise DigestMismatch(expected, actual)
                if not await store._exists(target):
                    await store._copy(self._key, target, total)
        except BaseException:
            await self._finish(None if completed else self._progress.multipart, completed)
            raise
        await self._finish(None if completed else self._progress.multipart, completed)
        return BlobInfo(expected, total)

    async def _require_multipart(self) -> None:
        s3 = await self._store.client()
        if self._progress.multipart is None:
            raise UploadNotFound(self._id)
        try:
            await s3.list_parts(
                Bucket=self._store.bucket,
                Key=self._key,
                UploadId=self._progress.multipart,
                MaxParts=1,
            )
        except ClientError as exc:
            if _code(exc) in {"NoSuchUpload", *_NOT_FOUND}:
                raise UploadNotFound(self._id) from None
            raise

    async def _complete(self) -> None:
        s3 = await self._store.client()
        parts = [
            {"ETag": etag, "PartNumber": number}
            for number, (etag, _) in enumerate(self._progress.parts, start=1)
        ]
        try:
            await s3.complete_multipart_upload(
                Bucket=self._store.bucket,
                Key=self._key,
                UploadId=await self._ensure_multipart(),
                MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]  # ETag, PartNumber
            )
        except ClientError as exc:
            if _code(exc) in {"NoSuchUpload", *_NOT_FOUND}:
                raise UploadNotFound(self._id) from None
            raise

    async def _hash_object(self, algorithm: str) -> Digest:
        """Read the completed upload back to hash it (no saved sha256 state, or sha512)."""
        s3 = await self._store.client()
        hasher = hashlib.new(algorithm)
        response = await s3.get_object(Bucket=self._store.bucket, Key=self._key)
        async with response["Body"] as body:
            async for chunk in body.iter_chunks(_READ_CHUNK):
                hasher.update(chunk)
        return Digest(algorithm, hasher.hexdigest())

    async def abort(self) -> None:
        if self._done:
            return
        await self._finish(self._progress.multipart)

    async def _finish(self, multipart: str | None, completed: bool = False) -> None:
        self._done = True
        self._buffer = None
        await self._store._discard(self._id, multipart, tails=not self._local, completed=completed)
