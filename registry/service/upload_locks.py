"""Exclusive per-upload holds that every worker process and every replica sees.

Two requests must never append to one upload at once (a client retrying a chunk whose first
attempt is still in flight would otherwise get both appended). Each request that writes to an
upload holds the upload's session row (`holder`, `hold_expires_at`) for as long as it writes,
renewing the hold while alive. A replica that dies mid-chunk stops renewing, and after `ttl`
seconds another replica may take the upload over: the client's next request (GET for the
offset, then PATCH or PUT) finds it free. The holder is the request, not the process
(registry.holders names each), so two requests of one process exclude each other too.

Taking the hold is one UPDATE of the row, in the transaction that reads the session (and
pins the blob, for a PUT); the UPDATE that ends an upload releases it. A session that has no
row yet (registry.service.signed_upload_ids) is started by its first hold, which inserts the
row held. The same guarantees as registry.leases, on the row an upload writes anyway: on
SQLite the transaction holds the write lock; on PostgreSQL the UPDATE waits for a concurrent
taker's row lock and re-evaluates its WHERE clause afterwards (and a concurrent INSERT of
one id waits for the first, then does nothing).

A holder that was a process of this very machine and is no longer running is known dead
(registry.holders), so its hold is released at once instead of waiting for the ttl: a
server restarted after a crash resumes its uploads immediately, as it did with flock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from types import TracebackType
from typing import Any, Final, Protocol

from sqlalchemy import bindparam, or_, select, update

from registry.db import Database, WriteConnection
from registry.db.models import repositories, upload_sessions, utcnow
from registry.holders import holder_name, known_dead

log = logging.getLogger(__name__)

UPLOAD_LEASE_TTL: Final = 15.0  # seconds a crashed replica's upload stays locked
UPLOAD_BUSY_WAIT: Final = 2.0  # seconds a request waits for another to finish with the upload

_S = upload_sessions.c
_ID = _S.id == bindparam("_id")
_OURS = _S.holder == bindparam("_holder")
_OPEN = _S.ended_at.is_(None)
_FREE = or_(_S.holder.is_(None), _S.hold_expires_at < bindparam("_now"), _OURS)
_IN_REPO = _S.repository_id == (
    select(repositories.c.id).where(repositories.c.name == bindparam("_repo")).scalar_subquery()
)
_HOLDING: dict[str, object] = {
    "holder": bindparam("_holder"),
    "hold_expires_at": bindparam("_expires"),
}
# Built once (see registry.db.insert_ignore): every upload request runs these.
_TAKE = update(upload_sessions).where(_ID, _OPEN, _FREE).values(_HOLDING)
_TAKE_IN_REPO = update(upload_sessions).where(_ID, _IN_REPO, _OPEN, _FREE).values(_HOLDING)
_SESSION = select(_S.repository_id, _S.state).where(_ID)
_HOLDER = select(_S.holder).where(_ID)
_HOLDER_IN_REPO = select(_S.holder).where(_ID, _IN_REPO)
_RENEW = update(upload_sessions).where(_ID, _OURS).values(hold_expires_at=bindparam("_expires"))
_RELEASE = update(upload_sessions).where(_ID, _OURS).values(holder=None, hold_expires_at=None)


class UploadBusy(Exception):
    """Another request holds the upload."""

    def __init__(self, upload_id: str) -> None:
        super().__init__(f"upload {upload_id} is being written by another request")
        self.upload_id = upload_id


class UploadGone(Exception):
    """The upload has no session (in that repository)."""


class UploadHold:
    """A request's hold on one upload, with the session as read under it. Its last
    transaction may give the hold up too (`release_in`, or deleting the session), then
    `released()` once committed, saving a transaction of its own."""

    def __init__(self, upload_id: str, holder: str, repository_id: int, state: bytes | None):
        self.upload_id = upload_id
        self.holder = holder
        self.repository_id = repository_id
        self.state = state  # the blobstore's saved progress (see UploadService._resume)
        self.let_go = False

    async def release_in(self, conn: WriteConnection) -> None:
        await conn.execute(_RELEASE, {"_id": self.upload_id, "_holder": self.holder})

    def released(self) -> None:
        self.let_go = True


class UploadLocks:
    def __init__(
        self, db: Database, ttl: float = UPLOAD_LEASE_TTL, wait: float = UPLOAD_BUSY_WAIT
    ) -> None:
        self._db = db
        self._ttl = ttl
        self._wait = wait

    def hold(
        self,
        upload_id: str,
        repo: str | None = None,
        also: Callable[[WriteConnection], Awaitable[None]] | None = None,
        start: Starter | None = None,
    ) -> Holding:
        """`async with locks.hold(...) as hold`: hold the upload (of repository `repo`, when
        given), or raise UploadGone if it has no session, or UploadBusy if another request
        keeps it for longer than `wait` seconds (or took it over from this one, which stalled
        past the ttl). `also` runs in the transaction that takes the hold: what it reads is
        read under the hold, and if it raises, the hold was never taken. `start`, when the
        session may have no row yet, inserts it held (see Starter)."""
        return Holding(self, upload_id, repo, also, start)


class Starter(Protocol):
    """Insert the session's row, held as `hold` says (its `_id`, `_holder`, `_now` and
    `_expires`), unless it has one (open or ended): whether it did. `first`: tried before
    the row is looked for (the repository may not exist yet); else after none was found."""

    async def __call__(
        self, conn: WriteConnection, hold: dict[str, Any], *, first: bool
    ) -> bool: ...


class Holding:
    """One request's hold (a plain async context manager: an upload takes one per request,
    and AsyncExitStack with asynccontextmanager cost more than the rest of the hold)."""

    def __init__(
        self,
        locks: UploadLocks,
        upload_id: str,
        repo: str | None,
        also: Callable[[WriteConnection], Awaitable[None]] | None,
        start: Starter | None,
    ) -> None:
        self._locks = locks
        self._id = upload_id
        self._repo = repo
        self._also = also
        self._start = start
        self._hold: UploadHold | None = None
        self._body: asyncio.Task[object] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._lost = False

    async def __aenter__(self) -> UploadHold:
        locks = self._locks
        holder = holder_name()
        # A client that lost its connection mid-chunk often asks again before the server has
        # finished with the cut-off request: give that request a moment to let go.
        loop = asyncio.get_running_loop()
        deadline, delay = loop.time() + locks._wait, 0.02
        while True:
            found = await locks._db.transact(lambda conn: self._take(conn, holder))
            if isinstance(found, UploadHold):
                break
            if found is None:
                raise UploadGone(self._id)
            if known_dead(found):
                await locks._db.transact(self._release_dead(found))
            elif loop.time() + delay > deadline:
                raise UploadBusy(self._id)
            else:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.25)
        self._hold = found
        self._body = asyncio.current_task()
        # Most holds (an upload's request) end well before the first renewal: a timer costs
        # less than a task started, cancelled and waited for on every one of them.
        self._timer = loop.call_later(locks._ttl / 3, self._start_renewing)
        return found

    async def _take(self, conn: WriteConnection, holder: str) -> UploadHold | str | None:
        """The hold; else the holder keeping it, or None when there is no session."""
        now = utcnow()
        key = {
            "_id": self._id,
            "_holder": holder,
            "_now": now,
            "_expires": now + timedelta(seconds=self._locks._ttl),
        }
        start = self._start
        started = start is not None and await start(conn, key, first=True)
        if not started and not await self._take_row(conn, key):
            holding = await self._holder(conn, key)
            # No open row: a session not started yet, or one that ended.
            if holding is not None or start is None:
                return holding
            # Else it ended; or a request on another replica started it and made the
            # repository, whose rows were not to be seen before waiting for them
            # (PostgreSQL): then that request holds the session, or has just let go.
            held = await start(conn, key, first=False) or await self._take_row(conn, key)
            if not held:
                return await self._holder(conn, key)
        session = (await conn.execute(_SESSION, key)).one()
        if self._also is not None:
            await self._also(conn)
        return UploadHold(self._id, holder, int(session.repository_id), session.state)

    async def _take_row(self, conn: WriteConnection, key: dict[str, Any]) -> bool:
        if self._repo is None:
            taken = await conn.execute(_TAKE, key)
        else:
            taken = await conn.execute(_TAKE_IN_REPO, {**key, "_repo": self._repo})
        return taken.rowcount == 1

    async def _holder(self, conn: WriteConnection, key: dict[str, Any]) -> str | None:
        if self._repo is None:
            query = await conn.execute(_HOLDER, key)
        else:
            query = await conn.execute(_HOLDER_IN_REPO, {**key, "_repo": self._repo})
        return query.scalar_one_or_none()  # type: ignore[no-any-return]

    def _release_dead(self, dead: str) -> Callable[[WriteConnection], Awaitable[object]]:
        key = {"_id": self._id, "_holder": dead}  # the dead one's hold only
        return lambda conn: conn.execute(_RELEASE, key)

    def _start_renewing(self) -> None:
        self._renewer = asyncio.create_task(self._renew())

    async def _renew(self) -> None:
        assert self._hold is not None
        holder = self._hold.holder
        ttl = self._locks._ttl

        async def renew(conn: WriteConnection) -> bool:
            key = {
                "_id": self._id,
                "_holder": holder,
                "_expires": utcnow() + timedelta(seconds=ttl),
            }
            return (await conn.execute(_RENEW, key)).rowcount == 1

        while True:
            try:
                renewed = await self._locks._db.transact(renew)
            except Exception:  # a passing database error: retry next round
                log.warning("renewing the hold on upload %s failed", self._id, exc_info=True)
            else:
                if not renewed:  # taken over (or the session is gone)
                    self._lost = True
                    if self._body is not None:
                        self._body.cancel()
                    return
            await asyncio.sleep(ttl / 3)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        hold = self._hold
        assert hold is not None
        assert self._timer is not None
        self._timer.cancel()
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.wait([self._renewer])  # never swallows a cancellation of this task
        if not self._lost and not hold.let_go:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._locks._db.transact(hold.release_in))
        # Only the renewer's cancellation becomes UploadBusy: if someone else cancelled the
        # task too (a shutdown), that one must go on, or the task would never stop.
        body = self._body
        lost = self._lost and isinstance(exc, asyncio.CancelledError)
        if lost and body is not None and body.uncancel() == 0:
            raise UploadBusy(self._id) from None
