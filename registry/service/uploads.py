"""Blob uploads: sessions in SQL, bytes in a blobstore ingest, published only when verified.

An upload's state lives in exactly two places, so any worker process can take any request:
the `upload_sessions` row (id, repository, timestamps) and the blobstore ingest of that id,
whose length is the offset. A failed or mismatching upload publishes nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Final

from sqlalchemy import bindparam, delete, select, update

from blobstore import BlobInfo, BlobStore, Digest, Upload, UploadNotFound, new_upload_id
from registry.db import Database, ReadConnection, WriteConnection
from registry.db.models import repositories, upload_sessions, utcnow
from registry.errcode import (
    BLOB_UPLOAD_UNKNOWN,
    RANGE_INVALID,
    SIZE_INVALID,
    RegistryError,
)
from registry.quota import Quotas
from registry.service.pins import link_blob, pin_blob, try_pin, unpin_blob
from registry.service.repos import ensure_repository
from registry.service.upload_locks import UploadBusy, UploadGone, UploadHold, UploadLocks
from registry.webhooks import Outbox

_SESSION_IN_REPO = (
    select(upload_sessions.c.repository_id, upload_sessions.c.state)
    .join(repositories, repositories.c.id == upload_sessions.c.repository_id)
    .where(upload_sessions.c.id == bindparam("id"), repositories.c.name == bindparam("repo"))
)

# Built once (see registry.db.insert_ignore): every upload runs these.
_NEW_SESSION = upload_sessions.insert()
# The session of a repository that exists (nearly always): one statement, no lookup first.
_NEW_SESSION_IN_REPO = upload_sessions.insert().from_select(
    ["id", "repository_id", "started_at", "updated_at", "state"],
    select(
        bindparam("id", type_=upload_sessions.c.id.type),
        repositories.c.id,
        bindparam("now", type_=upload_sessions.c.started_at.type),
        bindparam("now", type_=upload_sessions.c.updated_at.type),
        bindparam("state", type_=upload_sessions.c.state.type),
    ).where(repositories.c.name == bindparam("repo")),
)
_TOUCH = (
    update(upload_sessions)
    .where(upload_sessions.c.id == bindparam("_id"))
    .values(updated_at=bindparam("_now"), state=bindparam("_state"))
)
_FORGET = delete(upload_sessions).where(upload_sessions.c.id == bindparam("_id"))
# A body up to this size is written well within a pin's lifetime: its pin is taken up front.
_EARLY_PIN_BYTES: Final = 64 << 20


@dataclass(frozen=True, slots=True)
class ChunkRange:
    """An inclusive byte range from Content-Range (`start-end`)."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


@dataclass(frozen=True, slots=True)
class UploadState:
    id: str
    size: int


class UploadService:
    def __init__(
        self,
        db: Database,
        store: BlobStore,
        locks: UploadLocks,
        *,
        quotas: Quotas | None = None,
        events: Outbox | None = None,
    ) -> None:
        self._db = db
        self._engine = db.engine
        self._store = store
        self._locks = locks
        self._quotas = quotas or Quotas()
        self._events = events or Outbox()

    async def begin(self, repo: str) -> UploadState:
        # Only the session: the store sees the upload at its first bytes (`_resume`).
        upload_id = new_upload_id()

        async def work(conn: WriteConnection) -> None:
            session = {"id": upload_id, "state": None}
            found = await conn.execute(
                _NEW_SESSION_IN_REPO, {**session, "repo": repo, "now": utcnow()}
            )
            if found.rowcount != 1:  # the repository's first upload
                repo_id = await ensure_repository(conn, repo)
                await conn.execute(_NEW_SESSION, {**session, "repository_id": repo_id})

        await self._db.transact(work)
        return UploadState(upload_id, 0)

    async def status(self, repo: str, upload_id: str) -> UploadState:
        upload = await self._open(repo, upload_id)
        await upload.close()
        return UploadState(upload_id, upload.size)

    async def append(
        self,
        repo: str,
        upload_id: str,
        body: AsyncIterable[bytes],
        chunk_range: ChunkRange | None,
        length: int | None,
    ) -> UploadState:
        """Append one chunk. Out of order, or while another request writes to the same upload:
        RANGE_INVALID (416), and the session is untouched."""
        async with self._hold(repo, upload_id) as held:
            upload = await self._resume(upload_id, held.hold.state)
            try:
                await _write_chunk(upload, body, chunk_range, length)
            finally:
                await upload.close()

                async def work(conn: WriteConnection) -> None:
                    # Also when the client went away mid-chunk: what arrived is kept, as on disk.
                    await _touch(conn, upload_id, upload)
                    await held.hold.release_in(conn)

                await self._db.transact(work)
                held.hold.released()
        return UploadState(upload_id, upload.size)

    async def complete(
        self,
        repo: str,
        upload_id: str,
        digest: Digest,
        body: AsyncIterable[bytes],
        chunk_range: ChunkRange | None,
        length: int | None,
    ) -> BlobInfo:
        """Write the optional final chunk, verify the whole blob against `digest`, publish it
        and link it into `repo`. On a digest mismatch the session is gone and nothing is stored."""
        # The pin is taken with the hold, in one transaction, when the body is small enough
        # for the pin to outlive writing it (a pin expires; see pins.PIN_TTL).
        early = length is not None and length <= _EARLY_PIN_BYTES
        size_hint = chunk_range.end + 1 if chunk_range is not None else length or 0
        async with self._hold(repo, upload_id, (digest, size_hint) if early else None) as held:
            # A store resumes an empty ingest with hashing from the start (the filesystem's
            # in this process, S3's from the saved state): a whole blob in this one request is
            # hashed as it is written, never read back.
            pinned = held.pinned
            try:
                upload = await self._resume(upload_id, held.hold.state)
                try:
                    await _write_chunk(upload, body, chunk_range, length)
                except BaseException:
                    await upload.close()
                    raise
            except BaseException:
                if pinned:
                    await self._unpin(digest, upload_id)
                raise
            try:
                if not pinned:
                    await pin_blob(self._db, digest, upload.size, upload_id)
                    pinned = True
            except BaseException:
                await upload.close()
                raise
            try:
                await self._quotas.admit(self._db, repo, digest, upload.size)
                info = await upload.commit(digest)
            except BaseException:
                await upload.abort()  # a no-op after a failed commit, which aborts itself
                await self._unpin(digest, upload_id)
                await self._discard(upload_id)
                raise

            async def work(conn: WriteConnection) -> None:
                # While its session exists, so does the repository (deleting it cascades).
                # Deleting the session releases the hold on it too.
                if await _forget(conn, upload_id):
                    repo_id = held.hold.repository_id
                else:
                    repo_id = await ensure_repository(conn, repo)
                await link_blob(conn, repo_id, info, pinned=True)
                await unpin_blob(conn, digest, upload_id)
                await self._quotas.enforce(conn, repo)
                await self._events.blob_pushed(conn, repo, str(info.digest), info.size)

            try:
                await self._db.transact(work)
            except RegistryError:
                await self._unpin(digest, upload_id)
                await self._discard(upload_id)  # refused (a quota): the session goes too
                raise
            except BaseException:
                await self._unpin(digest, upload_id)
                raise
            held.hold.released()
        return info

    async def _discard(self, upload_id: str) -> None:
        """Drop a session that failed for good: its ingest and its row."""
        await self._abort_ingest(upload_id)
        await self._db.transact(lambda conn: _forget(conn, upload_id))

    async def _abort_ingest(self, upload_id: str) -> None:
        with contextlib.suppress(UploadNotFound):
            await (await self._store.resume(upload_id)).abort()

    async def upload_whole(self, repo: str, digest: Digest, body: AsyncIterable[bytes]) -> BlobInfo:
        """A monolithic upload (POST ?digest=): no session row at all."""
        upload = await self._store.begin()
        pinned = False
        try:
            async for chunk in body:
                await upload.write(chunk)
            await self._quotas.admit(self._db, repo, digest, upload.size)
            await pin_blob(self._db, digest, upload.size, upload.id)
            pinned = True
            info = await upload.commit(digest)

            async def work(conn: WriteConnection) -> None:
                await link_blob(conn, await ensure_repository(conn, repo), info)
                await unpin_blob(conn, digest, upload.id)
                await self._quotas.enforce(conn, repo)
                await self._events.blob_pushed(conn, repo, str(info.digest), info.size)

            await self._db.transact(work)
        except BaseException:
            if pinned:
                await self._unpin(digest, upload.id)
            raise
        finally:
            await upload.abort()  # a no-op after commit
        return info

    async def _unpin(self, digest: Digest, holder: str) -> None:
        await self._db.transact(lambda conn: unpin_blob(conn, digest, holder))

    async def cancel(self, repo: str, upload_id: str) -> None:
        """DELETE of an upload: under its hold, so a PATCH or PUT in flight is not cut off."""
        async with self._hold(repo, upload_id) as held:
            upload = await self._resume(upload_id, held.hold.state)
            await upload.abort()
            await self._db.transact(lambda conn: _forget(conn, upload_id))  # and the hold
            held.hold.released()

    @contextlib.asynccontextmanager
    async def _hold(
        self, repo: str, upload_id: str, pin: tuple[Digest, int] | None = None
    ) -> AsyncIterator[_Held]:
        """Hold the upload; the hold has the session's saved blobstore state, read under it
        (the previous holder may have saved a newer one while this request waited for it).
        With `pin` (digest, size hint), also tries to pin the blob in that transaction."""
        held = _Held()

        async def pin_under_hold(conn: WriteConnection) -> None:
            assert pin is not None
            held.pinned = await try_pin(conn, pin[0], pin[1], upload_id)

        try:
            async with self._locks.hold(
                upload_id, repo, None if pin is None else pin_under_hold
            ) as hold:
                held.hold = hold
                yield held
        except UploadGone:
            raise RegistryError(BLOB_UPLOAD_UNKNOWN, detail={"upload": upload_id}) from None
        except UploadBusy:
            upload = await self._open(repo, upload_id)
            await upload.close()
            raise RegistryError(
                RANGE_INVALID,
                detail={"upload": upload_id, "reason": "another request is writing to it"},
                headers={"Range": range_header(upload.size)},
            ) from None

    async def _open(self, repo: str, upload_id: str) -> Upload:
        return await self._resume(upload_id, await self._check_session(repo, upload_id))

    async def _resume(self, upload_id: str, state: bytes | None) -> Upload:
        """The session's upload in the store. Its saved state is None until the upload holds
        bytes (see `_touch`): the store may have nothing of it yet."""
        try:
            if state is None:
                return await self._store.open_upload(upload_id)
            return await self._store.resume(upload_id, state or None)
        except UploadNotFound:
            raise RegistryError(BLOB_UPLOAD_UNKNOWN, detail={"upload": upload_id}) from None

    async def _check_session(self, repo: str, upload_id: str) -> bytes | None:
        async with self._db.read() as conn:
            return (await _session(conn, repo, upload_id))[1]


class _Held:
    """What `_hold` got: the hold itself (with the session read under it, and which the last
    transaction under it may release) and whether the blob got pinned."""

    pinned: bool = False
    hold: UploadHold


async def _session(conn: ReadConnection, repo: str, upload_id: str) -> tuple[int, bytes | None]:
    """The session's repository id and saved blobstore state; BLOB_UPLOAD_UNKNOWN when there
    is no session."""
    found = (await conn.execute(_SESSION_IN_REPO, {"id": upload_id, "repo": repo})).one_or_none()
    if found is None:
        raise RegistryError(BLOB_UPLOAD_UNKNOWN, detail={"upload": upload_id})
    return int(found.repository_id), found.state


def range_header(size: int) -> str:
    """The `Range` value for an upload of `size` bytes (Distribution's `0-0` when empty)."""
    return f"0-{max(size - 1, 0)}"


async def _write_chunk(
    upload: Upload, body: AsyncIterable[bytes], chunk_range: ChunkRange | None, length: int | None
) -> None:
    if chunk_range is not None:
        if chunk_range.start != upload.size:
            raise RegistryError(
                RANGE_INVALID,
                detail={"expected_start": upload.size, "got": chunk_range.start},
                headers={"Range": range_header(upload.size)},
            )
        if length is not None and length != chunk_range.length:
            raise RegistryError(
                SIZE_INVALID,
                detail={"content_length": length, "content_range_length": chunk_range.length},
            )
    start = upload.size
    async for chunk in body:
        await upload.write(chunk)
    written = upload.size - start
    if chunk_range is not None and written != chunk_range.length:
        raise RegistryError(
            SIZE_INVALID, detail={"received": written, "content_range_length": chunk_range.length}
        )


async def _touch(conn: WriteConnection, upload_id: str, upload: Upload) -> None:
    # An upload with no bytes may have nothing in the store (a file system ingest is created
    # by its first write): its state stays None, so the next request opens it afresh.
    state = upload.state() if upload.size else None
    await conn.execute(_TOUCH, {"_id": upload_id, "_now": utcnow(), "_state": state})


async def _forget(conn: WriteConnection, upload_id: str) -> bool:
    """Delete the session's row; False if it was gone already."""
    return (await conn.execute(_FORGET, {"_id": upload_id})).rowcount == 1
