"""The blobstore contract.

A blobstore keeps immutable blobs keyed by digest. It knows nothing of repositories:
which repository may see which blob is the registry's business, kept in SQL.

Lifecycle of a write, as containerd's content store has it: `begin()` opens an ingest,
`write()` appends to it, and nothing is readable through `stat()`/`read()` until `commit()`
has verified the digest (and size) and published the blob atomically. An ingest lives on
in the store until commit or abort, so `resume(id)` can continue it from another request,
another worker process, or after a restart.

Idempotence, as umoci's CAS engine documents it: a commit that returns means "the content
is stored at DIGEST", not "because of this call"; `delete()` of an absent blob is no error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import NamedTuple, Protocol, runtime_checkable

from blobstore.digest import Digest


class BlobInfo(NamedTuple):
    digest: Digest
    size: int


class Upload(Protocol):
    """An ingest in progress. Nothing written is readable until commit() returns."""

    @property
    def id(self) -> str: ...

    @property
    def size(self) -> int:
        """Bytes written so far, by this object and by any earlier holder of the same id."""
        ...

    def state(self) -> bytes:
        """The upload's progress as opaque bytes, as of the last close() (or begin/resume).
        Saved by the caller with its session and handed back to `resume()`, it lets any
        process continue the upload and, in the common case, verify it at commit without
        reading back what was written. Empty when the store needs none."""
        ...

    async def write(self, chunk: bytes) -> None:
        """Append `chunk`. Raises UploadNotFound if the ingest was aborted meanwhile."""
        ...

    async def commit(self, expected: Digest, size: int | None = None) -> BlobInfo:
        """Verify, then publish atomically. On DigestMismatch/SizeMismatch nothing is
        published and the ingest is discarded. Releases the object's resources."""
        ...

    async def close(self) -> None:
        """Release this object's resources, keeping the ingest for a later resume()."""
        ...

    async def abort(self) -> None:
        """Discard the ingest. Idempotent and a no-op after commit, so it is safe in `finally`."""
        ...


class BlobReader(Protocol):
    async def stat(self, digest: Digest) -> BlobInfo:
        """Size of a committed blob; raises BlobNotFound."""
        ...

    def read(self, digest: Digest, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Stream bytes [start, end) of a committed blob (`end` None: to the end).
        Raises BlobNotFound, or InvalidRange when start/end do not fit the blob."""
        ...


class BlobStore(BlobReader, Protocol):
    async def begin(self) -> Upload:
        """Open a new, empty ingest with a fresh id."""
        ...

    async def resume(self, upload_id: str, state: bytes | None = None) -> Upload:
        """Reopen an ingest by id, from the `state()` last saved for it when there is one
        (without it the store works out the progress from what it holds, and commit hashes
        the content again). Raises UploadNotFound."""
        ...

    async def open_upload(self, upload_id: str) -> Upload:
        """Resume the ingest `upload_id`, or begin it under that id when the store holds
        nothing of it yet. For an id from `new_upload_id()` that the caller keeps (an upload
        session), so that nothing touches the store before the upload's first bytes; the
        caller, not the store, tells such an id from one whose ingest was aborted."""
        ...

    async def delete(self, digest: Digest) -> None:
        """Remove a committed blob. Idempotent."""
        ...

    def walk(self) -> AsyncIterator[BlobInfo]:
        """Every committed blob, in no particular order."""
        ...

    async def idle_uploads(self, seconds: float) -> list[str]:
        """Ids of uploads not written to for `seconds` (S3: begun that long ago), for
        sweeping abandoned ones when no session table keeps track of them."""
        ...


@runtime_checkable
class LocalBlobPaths(Protocol):
    """Implemented by stores whose blobs are local files, so servers can use sendfile."""

    def blob_path(self, digest: Digest) -> Path: ...


@runtime_checkable
class BlobURLs(Protocol):
    """Implemented by stores that can hand clients a URL to fetch a blob from directly."""

    async def url_for(self, digest: Digest) -> str:
        """A time-limited URL of a committed blob (which the caller has checked exists)."""
        ...
