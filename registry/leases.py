"""Leases through the database: leader election, and exclusive holds on uploads and fetches.

A lease is a row `(name, holder, expires_at, generation)`. Whoever holds an unexpired lease
owns the thing it names; a holder that dies simply stops renewing, and after `ttl` seconds
anyone may take the lease over. Taking over an expired lease bumps `generation`, so work
done under an old hold can be fenced: a writer that must not act after losing its lease
checks `holds(conn, ...)` in the same transaction as its change.

The two statements of `acquire` run in one write transaction. On SQLite the transaction
holds the write lock; on PostgreSQL the UPDATE waits for a concurrent taker's row lock and
re-evaluates its WHERE clause afterwards, so two replicas never both see success.

Times are the replicas' clocks (UTC); keep them in sync (NTP) and the ttl well above the skew.

    leases = Leases(db)
    async with leases.hold("upload:" + upload_id, ttl=30):      # LeaseBusy if someone has it
        ...
    await run_as_leader(leases, "gc", job, ttl=30)              # on one replica at a time
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from sqlalchemy import and_, bindparam, delete, or_, select, update

from registry.db import Database, ReadConnection, WriteConnection, insert_ignore
from registry.db.models import leases as leases_table
from registry.db.models import utcnow

log = logging.getLogger(__name__)

DEFAULT_TTL: Final = 30.0

# Built once (see registry.db.insert_ignore): every upload request takes and releases a lease.
_NAMED = leases_table.c.name == bindparam("_name")
_HOLDER = select(leases_table.c.holder, leases_table.c.generation).where(_NAMED)
_RENEW = (
    update(leases_table)
    .where(_NAMED, leases_table.c.holder == bindparam("_holder"))
    .values(expires_at=bindparam("_expires"))
)
_TAKE_OVER = (
    update(leases_table)
    .where(
        _NAMED,
        or_(
            leases_table.c.expires_at < bindparam("_now"),
            leases_table.c.holder == bindparam("_holder"),
        ),
    )
    .values(
        holder=bindparam("_holder"),
        expires_at=bindparam("_expires"),
        generation=leases_table.c.generation + 1,
    )
)
_RELEASE = delete(leases_table).where(_NAMED, leases_table.c.holder == bindparam("_holder"))


class LeaseBusy(Exception):
    """Someone else holds the lease."""

    def __init__(self, name: str, holder: str | None = None) -> None:
        super().__init__(f"{name} is held by {holder or 'another process'}")
        self.name = name
        self.holder = holder


class LeaseLost(Exception):
    """A hold could not be renewed: someone else took the lease over."""


@dataclass(frozen=True, slots=True)
class Lease:
    name: str
    holder: str
    generation: int


def process_identity() -> str:
    """A holder name unique to this process: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Leases:
    def __init__(self, db: Database, holder: str | None = None) -> None:
        self._db = db
        self.holder = holder or process_identity()
        self._let_go: set[str] = set()

    async def acquire(self, name: str, ttl: float = DEFAULT_TTL) -> Lease | None:
        """Take the lease (free, expired, or already ours) for `ttl` seconds; None if busy.
        Re-acquiring a lease this holder has is a renewal and keeps its generation."""
        return await self._db.transact(lambda conn: self.acquire_in(conn, name, ttl))

    async def acquire_in(self, conn: WriteConnection, name: str, ttl: float) -> Lease | None:
        """`acquire` inside the caller's write transaction."""
        holder = self.holder
        now = utcnow()
        expires = now + timedelta(seconds=ttl)
        row = None
        new = {"name": name, "holder": holder, "expires_at": expires, "generation": 1}
        key = {"_name": name, "_holder": holder, "_expires": expires, "_now": now}
        for _ in range(2):  # twice: the holder may release it between our two statements
            inserted = await conn.execute(insert_ignore(conn, leases_table, ["name"]), new)
            if inserted.rowcount == 1:  # it was free: ours, nothing more to check
                return Lease(name, holder, 1)
            row = (await conn.execute(_HOLDER, key)).one_or_none()
            if row is not None:
                break
        if row is None:
            return None
        if row.holder == holder:
            await conn.execute(_RENEW, key)
            return Lease(name, holder, int(row.generation))
        taken = await conn.execute(_TAKE_OVER, key)
        if taken.rowcount != 1:
            return None
        return Lease(name, holder, int(row.generation) + 1)

    async def release(self, name: str) -> None:
        """Give the lease up, if this holder has it. Idempotent."""
        holder = self.holder

        async def work(conn: WriteConnection) -> None:
            await conn.execute(_RELEASE, {"_name": name, "_holder": holder})

        await self._db.transact(work)

    async def release_in(self, conn: WriteConnection, name: str) -> None:
        """Give the lease up inside the caller's transaction (one write transaction fewer).
        Once that transaction has committed, call `let_go(name)` so that `hold` does not
        release it again."""
        await conn.execute(_RELEASE, {"_name": name, "_holder": self.holder})

    def let_go(self, name: str) -> None:
        """The lease `name` was released by a committed `release_in`."""
        self._let_go.add(name)

    async def holder_of(self, name: str) -> str | None:
        """Who holds an unexpired lease `name`, or None."""
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(leases_table.c.holder).where(
                        leases_table.c.name == name, leases_table.c.expires_at >= utcnow()
                    )
                )
            ).first()
        return None if row is None else str(row.holder)

    @contextlib.asynccontextmanager
    async def hold(
        self,
        name: str,
        ttl: float = DEFAULT_TTL,
        *,
        also: Callable[[WriteConnection], Awaitable[None]] | None = None,
    ) -> AsyncIterator[Lease]:
        """Hold `name` for the body, renewing it every ttl/3; raise LeaseBusy at once if
        someone else has it. If a renewal finds the lease taken over, the body's task is
        cancelled and LeaseLost is raised from the block.

        `also` runs in the transaction that takes the lease, once it is taken: what it reads
        is read under the lease, and if it raises, the lease was never taken."""

        async def take(conn: WriteConnection) -> Lease | None:
            taken = await self.acquire_in(conn, name, ttl)
            if taken is not None and also is not None:
                await also(conn)
            return taken

        self._let_go.discard(name)
        lease = await self._db.transact(take)
        if lease is None:
            raise LeaseBusy(name, await self.holder_of(name))
        body = asyncio.current_task()
        lost = False

        async def renew() -> None:
            nonlocal lost
            while True:
                try:
                    again = await self.acquire(name, ttl)
                except Exception:  # a passing database error: retry next round
                    log.warning("renewing lease %s failed", name, exc_info=True)
                else:
                    if again is None or again.generation != lease.generation:
                        lost = True
                        if body is not None:
                            body.cancel()
                        return
                await asyncio.sleep(ttl / 3)

        # Most holds (an upload's request) end well before the first renewal: a timer costs
        # less than a task started, cancelled and waited for on every one of them.
        renewer: asyncio.Task[None] | None = None

        def start_renewing() -> None:
            nonlocal renewer
            renewer = asyncio.create_task(renew())

        timer = asyncio.get_running_loop().call_later(ttl / 3, start_renewing)
        try:
            yield lease
        except asyncio.CancelledError:
            # Only the renewer's cancellation becomes LeaseLost: if someone else cancelled the
            # task too (a shutdown), that one must go on, or the task would never stop.
            if lost and body is not None and body.uncancel() == 0:
                raise LeaseLost(f"lease {name} was taken over") from None
            raise
        finally:
            timer.cancel()
            if renewer is not None:
                renewer.cancel()
                await asyncio.wait([renewer])  # never swallows a cancellation of this task
            if not lost and name not in self._let_go:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.release(name))


async def holds(conn: ReadConnection, lease: Lease) -> bool:
    """True if `lease` is still held, unexpired and not taken over: a fence to check inside
    the transaction that acts under it."""
    row = (
        await conn.execute(
            select(leases_table.c.name).where(
                and_(
                    leases_table.c.name == lease.name,
                    leases_table.c.holder == lease.holder,
                    leases_table.c.generation == lease.generation,
                    leases_table.c.expires_at >= utcnow(),
                )
            )
        )
    ).first()
    return row is not None


async def run_as_leader(
    leases: Leases,
    name: str,
    job: Callable[[], Awaitable[None]],
    *,
    ttl: float = DEFAULT_TTL,
    retry: float | None = None,
) -> None:
    """Forever: become the leader for `name` when no live replica is, then run `job` while
    the lease holds. `job` normally loops forever; if the lease is lost it is cancelled and
    this replica goes back to waiting. Run it as a task; cancel the task to stop."""
    wait = ttl / 3 if retry is None else retry
    while True:
        try:
            async with leases.hold(name, ttl):
                log.info("leader for %s (%s)", name, leases.holder)
                await job()
        except LeaseBusy:
            pass
        except LeaseLost:
            log.warning("lost the %s lease; another replica took it over", name)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; retrying", name)
        await asyncio.sleep(wait)
