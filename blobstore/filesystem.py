"""A blobstore on a local filesystem.

Layout under the root directory, drawn once here (every path is built by `_blob_path`
or `_ingest_path`):

    <root>/
    ├── blobs/
    │   └── <algorithm>/                 sha256, sha512
    │       └── <first two hex>/
    │           └── <hex>                a committed blob: complete, verified, read-only
    └── ingest/
        └── <upload id>                  bytes of an upload in progress (32 lowercase hex)

A blob only ever appears under blobs/ by `os.replace` of a fully written, fsynced and
verified ingest file, followed by an fsync of the directory, so a crash at any moment leaves
either no blob or the right one. Ingest files are plain appends and survive restarts; their
length is the upload's offset.

Hashing: hashlib cannot serialise a hasher, so each process keeps the hasher of the uploads it
wrote to, with the offset it has hashed up to. A commit continues from there, reading from the
file whatever another process appended meanwhile (or everything, when this process never saw
the upload), so any worker may take any chunk.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import hashlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeGuard

from blobstore.digest import SUPPORTED_ALGORITHMS, Digest
from blobstore.errors import (
    BlobNotFound,
    DigestMismatch,
    InvalidRange,
    SizeMismatch,
    UploadNotFound,
)
from blobstore.paths import blob_path
from blobstore.protocol import BlobInfo
from blobstore.publish_helper import PublishHelper, PublishHelperGone
from blobstore.upload_ids import UPLOAD_ID, new_upload_id

_READ_CHUNK: Final = 1 << 20
_WRITE_BUFFER: Final = 1 << 20
_MAX_PARTS: Final = 256  # pieces kept for one writev, well below IOV_MAX
_HASHERS_KEPT: Final = 1024
# Below this, a write or an unlink is done inline: it costs less than the hop to a thread.
_INLINE_BYTES: Final = 64 << 10
# Every this many bytes appended, a thread starts writing them to disk (fdatasync on a
# duplicate descriptor) while more arrive, so the fsync at commit finds little left to do.
_WRITEBACK_EVERY: Final = 8 << 20
_WRITEBACK_SLOTS: Final = threading.BoundedSemaphore(2)  # per process; past that, skip
# A small blob's file: written once, durable when the write returns (see _publish_new)
_CREATE_SYNCED: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_SYNC | os.O_CLOEXEC
# The same, made durable afterwards by the publish helper
_CREATE: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC


@dataclass(slots=True)
class _HashState:
    hasher: hashlib._Hash
    offset: int


class FilesystemBlobStore:
    """Blobs as files under `root`. Safe for many processes sharing one root."""

    def __init__(self, root: str | os.PathLike[str], *, publish_helper: bool = False) -> None:
        """`publish_helper`: publish small blobs through a helper process (see
        blobstore.publish_helper), for a long-running server; `close` stops it."""
        self.root = Path(root)
        self._publisher = PublishHelper() if publish_helper else None
        self._blobs = self.root / "blobs"
        self._ingest = self.root / "ingest"
        # `blob_path` and `_ingest_path` as strings, without pathlib's cost
        self._blobs_dir = str(self._blobs)
        self._ingest_dir = str(self._ingest)
        self._blobs.mkdir(parents=True, exist_ok=True)
        self._ingest.mkdir(parents=True, exist_ok=True)
        self._hash_states: OrderedDict[str, _HashState] = OrderedDict()

    async def close(self) -> None:
        if self._publisher is not None:
            await self._publisher.close()

    # -- paths ---------------------------------------------------------------

    def blob_path(self, digest: Digest) -> Path:
        return blob_path(self.root, digest)

    def _ingest_path(self, upload_id: str) -> str:
        if not UPLOAD_ID.fullmatch(upload_id):
            raise UploadNotFound(upload_id)
        return f"{self._ingest_dir}/{upload_id}"

    # -- reading -------------------------------------------------------------

    async def stat(self, digest: Digest) -> BlobInfo:
        try:
            # Inline: a stat of a local file costs microseconds, a thread hop ten times more,
            # and a blob HEAD is little else.
            st = os.stat(f"{self._blobs_dir}/{digest.algorithm}/{digest.hex[:2]}/{digest.hex}")
        except FileNotFoundError:
            raise BlobNotFound(digest) from None
        return BlobInfo(digest, st.st_size)

    async def read(
        self, digest: Digest, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        try:
            fd = await asyncio.to_thread(os.open, self.blob_path(digest), os.O_RDONLY)
        except FileNotFoundError:
            raise BlobNotFound(digest) from None
        try:
            size = os.fstat(fd).st_size
            stop = size if end is None else end
            if start < 0 or stop > size or start > stop:
                raise InvalidRange(start, end, size)
            position = start
            while position < stop:
                chunk = await asyncio.to_thread(
                    os.pread, fd, min(_READ_CHUNK, stop - position), position
                )
                if not chunk:
                    break
                position += len(chunk)
                yield chunk
        finally:
            os.close(fd)

    async def walk(self) -> AsyncIterator[BlobInfo]:
        # One prefix directory at a time, so memory stays flat however many blobs there are.
        for algorithm in SUPPORTED_ALGORITHMS:
            base = self._blobs / algorithm
            prefixes = await asyncio.to_thread(_subdirectories, base)
            for prefix in prefixes:
                for info in await asyncio.to_thread(_list_prefix, algorithm, prefix):
                    yield info

    # -- writing -------------------------------------------------------------

    async def begin(self) -> FilesystemUpload:
        upload_id = new_upload_id()
        path = f"{self._ingest_dir}/{upload_id}"
        # Creating or opening a small local file inline is cheaper than a thread hop.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        self._remember(upload_id, _HashState(hashlib.sha256(), 0))
        return FilesystemUpload(self, upload_id, path, fd, 0)

    async def resume(self, upload_id: str, state: bytes | None = None) -> FilesystemUpload:
        path = self._ingest_path(upload_id)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        except FileNotFoundError:
            raise UploadNotFound(upload_id) from None
        return self._resumed(upload_id, path, fd)

    async def open_upload(self, upload_id: str) -> FilesystemUpload:
        path = self._ingest_path(upload_id)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        except FileNotFoundError:
            # Nothing written yet: the file is created by the first write that reaches it
            # (for a small blob PUT in one go, by commit), not by the session's POST.
            self._remember(upload_id, _HashState(hashlib.sha256(), 0))
            return FilesystemUpload(self, upload_id, path, None, 0)
        return self._resumed(upload_id, path, fd)

    def _resumed(self, upload_id: str, path: str, fd: int) -> FilesystemUpload:
        size = os.fstat(fd).st_size
        if size == 0 and self._hash_state(upload_id) is None:
            # Nothing written yet, wherever it was begun: hashing can start here, so a whole
            # blob PUT to a session another process began is never read back at commit.
            self._remember(upload_id, _HashState(hashlib.sha256(), 0))
        return FilesystemUpload(self, upload_id, path, fd, size)

    async def delete(self, digest: Digest) -> None:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(os.unlink, self.blob_path(digest))

    async def ingest_ids(self) -> list[str]:
        """Ids of every upload in progress (for cleaning up abandoned ones)."""
        names = await asyncio.to_thread(os.listdir, self._ingest)
        return [name for name in names if UPLOAD_ID.fullmatch(name)]

    async def idle_uploads(self, seconds: float) -> list[str]:
        return await asyncio.to_thread(self._idle_uploads, time.time() - seconds)

    def _idle_uploads(self, cutoff: float) -> list[str]:
        idle = []
        with os.scandir(self._ingest) as entries:
            for entry in entries:
                with contextlib.suppress(FileNotFoundError):  # committed or aborted meanwhile
                    if UPLOAD_ID.fullmatch(entry.name) and entry.stat().st_mtime < cutoff:
                        idle.append(entry.name)
        return idle

    # -- the per-process hasher cache ---------------------------------------

    def _remember(self, upload_id: str, state: _HashState) -> None:
        self._hash_states[upload_id] = state
        self._hash_states.move_to_end(upload_id)
        while len(self._hash_states) > _HASHERS_KEPT:
            self._hash_states.popitem(last=False)

    def _hash_state(self, upload_id: str) -> _HashState | None:
        return self._hash_states.get(upload_id)

    def _forget(self, upload_id: str) -> None:
        self._hash_states.pop(upload_id, None)


class FilesystemUpload:
    """One open handle on an ingest file. Not safe for two writers at once."""

    def __init__(
        self, store: FilesystemBlobStore, upload_id: str, path: str, fd: int | None, size: int
    ) -> None:
        self._store = store
        self._id = upload_id
        self._path = path
        self._fd = fd  # None until the first write creates the file (see `open_upload`)
        self._open = True
        self._size = size
        self._pending: list[bytes] = []  # written by the next flush, as they are (no copy)
        self._pending_size = 0
        self._done = False
        self._unsynced = 0

    @property
    def id(self) -> str:
        return self._id

    @property
    def size(self) -> int:
        return self._size + self._pending_size

    def state(self) -> bytes:
        return b""  # the ingest file is the state; hashers are kept per process

    async def write(self, chunk: bytes) -> None:
        self._require_open()
        if chunk:
            self._pending.append(chunk)
            self._pending_size += len(chunk)
            if len(self._pending) >= _MAX_PARTS:  # many tiny pieces: one copy bounds them
                self._pending = [b"".join(self._pending)]
        if self._pending_size >= _WRITE_BUFFER:
            await self._flush()

    async def _flush(self) -> None:
        if not self._pending:
            return
        parts, size = self._pending, self._pending_size
        self._pending, self._pending_size = [], 0
        fd = self._file()
        state = self._appending_state()
        if size < _INLINE_BYTES:
            appended = _append_and_hash(fd, parts, state)
        else:
            appended = await asyncio.to_thread(_append_and_hash, fd, parts, state)
        if not appended:
            raise UploadNotFound(self._id)  # aborted through another handle
        self._size += size
        self._unsynced += size
        if self._unsynced >= _WRITEBACK_EVERY:
            self._unsynced = 0
            _start_writeback(fd)

    def _require_open(self) -> None:
        if not self._open:
            raise UploadNotFound(self._id)

    def _file(self) -> int:
        self._require_open()
        if self._fd is None:
            self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return self._fd

    def _appending_state(self) -> _HashState | None:
        """The cached hasher, if it has hashed exactly what the file holds."""
        state = self._store._hash_state(self._id)
        if state is not None and state.offset != self._size:
            return None  # another process appended: catch up from the file at commit
        return state

    async def commit(self, expected: Digest, size: int | None = None) -> BlobInfo:
        state = self._store._hash_state(self._id)
        if self._fd is None and self._open and _fresh(state, self._size, expected):
            return await self._commit_unwritten(expected, size, state)
        await self._flush()
        fd = self._file()
        try:
            try:
                if _hashed_whole(state, fd, expected):
                    # Hashed as written (the usual case): only the syncs wait for the disk.
                    actual_size, actual = state.offset, expected
                    if size is None or size == actual_size:
                        await self._publish_hashed(fd, expected, actual_size)
                else:  # one thread hop for the lot
                    actual_size, actual = await asyncio.to_thread(
                        self._verify_and_publish, fd, expected, size, state
                    )
            except FileNotFoundError:
                raise UploadNotFound(self._id) from None  # aborted through another handle
            if size is not None and size != actual_size:
                raise SizeMismatch(size, actual_size)
            if actual != expected:
                raise DigestMismatch(expected, actual)
        except BaseException:
            await self.abort()
            raise
        self._finish()
        return BlobInfo(expected, actual_size)

    def _verify_and_publish(
        self, fd: int, expected: Digest, size: int | None, state: _HashState | None
    ) -> tuple[int, Digest]:
        """Publish only if the size (when given) and the digest are right; returns both."""
        actual_size, actual = self._verify(fd, expected, state)
        if (size is None or size == actual_size) and actual == expected:
            target = self._prepare_publish(fd, expected)
            if target is not None:
                directory = _open_directory(target)
                try:
                    _sync_and_rename(fd, self._path, target, directory)
                finally:
                    os.close(directory)
        return actual_size, actual

    def _verify(self, fd: int, expected: Digest, state: _HashState | None) -> tuple[int, Digest]:
        size = os.fstat(fd).st_size
        if state is not None and state.hasher.name == expected.algorithm and state.offset <= size:
            _hash_file_range(self._path, state, size)
            actual = Digest.from_hasher(state.hasher)
            if actual == expected:
                return size, actual
        # No usable cached hasher, or it disagrees (two writers raced): hash the file itself.
        fresh = _HashState(expected.hasher(), 0)
        _hash_file_range(self._path, fresh, size)
        return size, Digest.from_hasher(fresh.hasher)

    async def _publish_hashed(self, fd: int, digest: Digest, size: int) -> None:
        """Publish, the quick metadata calls made inline and only the fsyncs and the rename in
        a thread, or the publish helper for a small blob: every call a thread makes hands the
        GIL back and forth with the busy event loop (futex waits and context switches, more
        than the calls themselves)."""
        publisher = self._store._publisher
        target = self._prepare_publish(fd, digest)
        if target is None:
            return
        if publisher is not None and size < _INLINE_BYTES:
            await self._published(publisher, target)
            return
        directory = _open_directory(target)
        try:
            await asyncio.to_thread(_sync_and_rename, fd, self._path, target, directory)
        finally:
            os.close(directory)

    async def _commit_unwritten(
        self, expected: Digest, size: int | None, state: _HashState
    ) -> BlobInfo:
        """Commit an upload none of whose bytes reached the disk (a small blob in one request):
        they are hashed here, and only a blob that is right and not stored yet gets a file
        (`_publish_new_file`)."""
        parts, total = self._pending, self._pending_size
        self._pending, self._pending_size = [], 0
        try:
            for part in parts:
                state.hasher.update(part)
            state.offset = total
            if size is not None and size != total:
                raise SizeMismatch(size, total)
            actual = Digest.from_hasher(state.hasher)
            if actual != expected:
                raise DigestMismatch(expected, actual)
            target = self._new_target(expected)
            if target is not None:  # else stored already (a re-push): nothing to write
                await self._publish_new_file(parts, total, target)
        except FileExistsError:
            self._finish()  # another handle wrote to this upload meanwhile: not ours to discard
            raise UploadNotFound(self._id) from None
        except BaseException:
            await self.abort()
            raise
        self._finish()
        return BlobInfo(expected, total)

    def _prepare_publish(self, fd: int, digest: Digest) -> str | None:
        """The target's path, its directory made if need be; None, and the ingest file gone,
        when the blob is stored already."""
        target = self._new_target(digest)
        if target is None:
            # Content-addressed: the stored copy is the same bytes (a re-push), so this one
            # needs neither a sync nor a rename.
            os.unlink(self._path)
            return None
        os.fchmod(fd, 0o444)
        return target

    async def _publish_new_file(self, parts: list[bytes], size: int, target: str) -> None:
        """Create the ingest file as ingest files are, write `parts` to it, and publish it:
        through the publish helper when there is one and the blob is small, else written,
        synced and renamed into place by one thread (see `_publish_new`)."""
        publisher = self._store._publisher
        if publisher is not None and size < _INLINE_BYTES:
            fd = os.open(self._path, _CREATE, 0o444)
            try:
                _write_all(fd, parts)
                if not _umask_keeps(0o444):
                    os.fchmod(fd, 0o444)
            finally:
                os.close(fd)
            await self._published(publisher, target)
            return
        directory = _open_directory(target)
        try:
            fd = os.open(self._path, _CREATE_SYNCED, 0o444)
            try:
                await asyncio.to_thread(_publish_new, fd, parts, self._path, target, directory)
            finally:
                os.close(fd)
        except FileNotFoundError:
            raise UploadNotFound(self._id) from None  # aborted through another handle
        finally:
            os.close(directory)

    async def _published(self, publisher: PublishHelper, target: str) -> None:
        try:
            try:
                await publisher.publish(self._path, target)
            except PublishHelperGone:
                # It stopped before answering: whether it got to this file is unknown, so the
                # publish is finished here, as without a helper.
                await asyncio.to_thread(_publish_written, self._path, target)
        except FileNotFoundError:
            raise UploadNotFound(self._id) from None  # aborted through another handle

    def _new_target(self, digest: Digest) -> str | None:
        """The target's path, its directory made if need be; None when the blob is stored
        already."""
        parent = f"{self._store._blobs_dir}/{digest.algorithm}/{digest.hex[:2]}"
        target = f"{parent}/{digest.hex}"
        if os.path.exists(target):
            return None
        if not os.path.isdir(parent):
            os.makedirs(parent, exist_ok=True)  # the first blob of this prefix
        return target

    async def close(self) -> None:
        try:
            await self._flush()
        finally:
            self._release()

    async def abort(self) -> None:
        if self._done:
            return
        small = self.size < _INLINE_BYTES
        self._finish()
        with contextlib.suppress(FileNotFoundError):
            if small:
                os.unlink(self._path)
            else:  # freeing a big file's blocks takes a while
                await asyncio.to_thread(os.unlink, self._path)

    def _finish(self) -> None:
        self._done = True
        self._pending, self._pending_size = [], 0
        self._store._forget(self._id)
        self._release()

    def _release(self) -> None:
        self._open = False
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _subdirectories(base: Path) -> list[str]:
    if not base.is_dir():
        return []
    return sorted(entry.path for entry in os.scandir(base) if entry.is_dir())


def _list_prefix(algorithm: str, prefix: str) -> list[BlobInfo]:
    found: list[BlobInfo] = []
    for entry in os.scandir(prefix):
        try:
            found.append(BlobInfo(Digest(algorithm, entry.name), entry.stat().st_size))
        except (ValueError, FileNotFoundError):
            continue
    return found


def _append_and_hash(fd: int, parts: list[bytes], state: _HashState | None) -> bool:
    """Append and hash; False, writing nothing, when the ingest file has been unlinked."""
    if os.fstat(fd).st_nlink == 0:
        return False
    total = _write_all(fd, parts)
    if state is not None:
        for part in parts:
            state.hasher.update(part)
        state.offset += total
    return True


def _write_all(fd: int, parts: list[bytes]) -> int:
    written = os.writev(fd, parts) if parts else 0
    total = sum(len(part) for part in parts)
    if written < total:  # a short write: finish it piece by piece
        view = memoryview(b"".join(parts))[written:]
        while view:
            view = view[os.write(fd, view) :]
    return total


def _fresh(state: _HashState | None, size: int, expected: Digest) -> TypeGuard[_HashState]:
    """True if `state` hashes the upload from its first byte, in `expected`'s algorithm."""
    return (
        state is not None
        and size == 0
        and state.offset == 0
        and state.hasher.name == expected.algorithm
    )


def _publish_new(fd: int, parts: list[bytes], path: str, target: str, directory: int) -> None:
    """Write `fd` (the ingest file at `path`, new, opened with O_SYNC: a write returns once
    data and inode are on disk, as a write and an fsync would), then make its name `target`
    (`directory` is the target's, open) durable. Each call this thread makes hands the GIL back
    and forth with the busy event loop (futex waits and context switches, more than the call
    itself), so it makes as few as it can: three for a blob of a single write."""
    if not _write_all(fd, parts):
        os.fsync(fd)  # an empty blob: no write made the new inode durable
    if not _umask_keeps(0o444):
        os.fchmod(fd, 0o444)
    os.replace(path, target)
    os.fsync(directory)


def _publish_written(path: str, target: str) -> None:
    """Publish the written file at `path` as `target` (fsync, rename, fsync of the directory),
    or only make sure of the directory when `target` is there already (renamed, or published by
    another upload of the same bytes, its data synced either way); FileNotFoundError: neither."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        if not os.path.exists(target):
            raise
        fd = None
    directory = _open_directory(target)
    try:
        if fd is None:
            os.fsync(directory)
        else:
            _sync_and_rename(fd, path, target, directory)
    finally:
        os.close(directory)
        if fd is not None:
            os.close(fd)


def _open_directory(path: str) -> int:
    """The directory that holds `path`, open (to fsync it)."""
    return os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY)


@functools.cache
def _umask_keeps(mode: int) -> bool:
    """True when this process's umask leaves `mode` whole (read from /proc: os.umask can only
    be read by setting it, which would race with other threads creating files)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8) & mode == 0
    except (OSError, ValueError):
        pass
    return False


def _start_writeback(fd: int) -> None:
    """Have a thread flush `fd`'s file to disk now; not waited for (commit's fsync is what
    makes the bytes durable), and skipped while enough threads already do it."""
    if not _WRITEBACK_SLOTS.acquire(blocking=False):
        return
    own_fd = os.dup(fd)  # the thread's own: closing the upload cannot pull it away

    def flush() -> None:
        try:
            os.fdatasync(own_fd)
        except OSError:
            pass  # commit's fsync will report it
        finally:
            os.close(own_fd)
            _WRITEBACK_SLOTS.release()

    threading.Thread(target=flush, name="berth-writeback", daemon=True).start()


def _hash_file_range(path: str, state: _HashState, size: int) -> None:
    """Bring `state` up to `size` bytes by hashing what the file holds past its offset."""
    if state.offset == size:
        return
    with open(path, "rb") as f:
        f.seek(state.offset)
        remaining = size - state.offset
        while remaining > 0:
            chunk = f.read(min(_READ_CHUNK, remaining))
            if not chunk:
                raise OSError(errno.EIO, f"ingest {path} shorter than {size} bytes")
            state.hasher.update(chunk)
            remaining -= len(chunk)
    state.offset = size


def _hashed_whole(state: _HashState | None, fd: int, expected: Digest) -> TypeGuard[_HashState]:
    """True if `state` has hashed the whole file and agrees with `expected` (anything else,
    `_verify` sorts out from the file)."""
    return (
        state is not None
        and state.hasher.name == expected.algorithm
        and state.offset == os.fstat(fd).st_size
        and Digest.from_hasher(state.hasher) == expected
    )


def _sync_and_rename(fd: int, path: str, target: str, directory: int) -> None:
    """Make the file durable, then its name (`directory` is the target's, open)."""
    os.fsync(fd)
    os.replace(path, target)  # FileNotFoundError: aborted through another handle
    os.fsync(directory)
