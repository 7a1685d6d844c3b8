"""Blob uploads: sessions in SQL, bytes in a blobstore ingest, published only when verified.

An upload's state lives in exactly two places, so any worker process can take any request:
the `upload_sessions` row (id, repository, timestamps) and the blobstore ingest of that id,
whose length is the offset. Both are written at the first bytes: until then the session is
its signed id alone (registry.service.signed_upload_ids). A failed or mismatching upload
publishes nothing.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import bindparam, select, update
from sqlalchemy.sql.dml import Insert

from blobstore import BlobInfo, BlobStore, Digest, Upload, UploadNotFound
from registry.db import Database, ReadConnection, WriteConnection, dialect_insert, insert_ignore
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
from registry.service.signed_upload_ids import SignedUploadIds
from registry.service.upload_locks import (
    Starter,
    UploadBusy,
    UploadGone,
    UploadHold,
    UploadLocks,
)
from registry.webhooks import Outbox

_S = upload_sessions.c
_SESSION_IN_REPO = (
    select(_S.repository_id, _S.state)
    .join(repositories, repositories.c.id == _S.repository_id)
    .where(
        _S.id == bindparam("id"), repositories.c.name == bindparam("repo"), _S.ended_at.is_(None)
    )
)
_ENDED = select(_S.id).where(_S.id == bindparam("id"))  # a row, but not an open session's
_STARTED = ["id", "repository_id", "started_at", "updated_at", "holder", "hold_expires_at"]
_TOUCH = (
    update(upload_sessions)
    .where(upload_sessions.c.id == bindparam("_id"))
    .values(updated_at=bindparam("_now"), state=bindparam("_state"))
)
# The row stays, ended, so that the id does not start the session again: purging deletes it
# once the id has expired. Ending it releases the hold too.
_END = (
    update(upload_sessions)
    .where(_S.id == bindparam("_id"), _S.ended_at.is_(None))
    .values(ended_at=bindparam("_now"), holder=None, hold_expires_at=None, state=None)
)
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
        ids: SignedUploadIds,
        *,
        quotas: Quotas | None = None,
        events: Outbox | None = None,
    ) -> None:
        self._db = db
        self._engine = db.engine
        self._store = store
        self._locks = locks
        self._ids = ids
        self._quotas = quotas or Quotas()
        self._events = events or Outbox()

    async def begin(self, repo: str) -> UploadState:
        # Nothing is written: the session's row and its ingest come with its first bytes.
        return UploadState(self._ids.new(repo), 0)

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
                # Ending the session releases the hold on it too.
                if await end_session(conn, upload_id):
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
        """End a session that failed for good, dropping its ingest."""
        await self._abort_ingest(upload_id)
        await self._db.transact(lambda conn: end_session(conn, upload_id))

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
            await self._db.transact(lambda conn: end_session(conn, upload_id))  # and the hold
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
                upload_id,
                repo,
                None if pin is None else pin_under_hold,
                self._starter(repo) if self._ids.issued(upload_id, repo) else None,
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

    def _starter(self, repo: str) -> Starter:
        async def start(conn: WriteConnection, hold: dict[str, Any], *, first: bool) -> bool:
            if first:
                query = _start_in_repo(conn.dialect.name)
                return (await conn.execute(query, {**hold, "_repo": repo})).rowcount == 1
            # The repository's first upload, or the session has ended.
            row = {
                "id": hold["_id"],
                "repository_id": await ensure_repository(conn, repo),
                "started_at": hold["_now"],
                "updated_at": hold["_now"],
                "holder": hold["_holder"],
                "hold_expires_at": hold["_expires"],
            }
            insert = insert_ignore(conn, upload_sessions, ["id"])
            return (await conn.execute(insert, row)).rowcount == 1

        return start

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
            found = await _found_session(conn, repo, upload_id)
            if found is not None:
                return found[1]
            if self._ids.issued(upload_id, repo) and not await _ended(conn, upload_id):
                return None  # not started: nothing written yet
        raise RegistryError(BLOB_UPLOAD_UNKNOWN, detail={"upload": upload_id})


class _Held:
    """What `_hold` got: the hold itself (with the session read under it, and which the last
    transaction under it may release) and whether the blob got pinned."""

    pinned: bool = False
    hold: UploadHold


async def _found_session(
    conn: ReadConnection, repo: str, upload_id: str
) -> tuple[int, bytes | None] | None:
    """The session row's repository id and saved blobstore state, if it has a row."""
    found = (await conn.execute(_SESSION_IN_REPO, {"id": upload_id, "repo": repo})).one_or_none()
    return None if found is None else (int(found.repository_id), found.state)


async def _ended(conn: ReadConnection, upload_id: str) -> bool:
    return (await conn.execute(_ENDED, {"id": upload_id})).first() is not None


@functools.cache
def _start_in_repo(dialect: str) -> Insert:
    """The session's row, held, in a repository that exists, unless it has one (maybe ended)."""
    started = select(
        bindparam("_id", type_=_S.id.type),
        repositories.c.id,
        bindparam("_now", type_=_S.started_at.type),
        bindparam("_now", type_=_S.updated_at.type),
        bindparam("_holder", type_=_S.holder.type),
        bindparam("_expires", type_=_S.hold_expires_at.type),
    ).where(repositories.c.name == bindparam("_repo"))
    insert = dialect_insert(dialect, upload_sessions).from_select(_STARTED, started)
    return insert.on_conflict_do_nothing(index_elements=["id"])  # type: ignore[no-any-return]  # dialect inserts are untyped


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


async def end_session(conn: WriteConnection, upload_id: str) -> bool:
    """End the session (and any hold on it); False if it had ended or had no row."""
    return (await conn.execute(_END, {"_id": upload_id, "_now": utcnow()})).rowcount == 1
