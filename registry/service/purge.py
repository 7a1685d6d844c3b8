"""Upload purging (Distribution's storage.maintenance.uploadpurging): drop abandoned sessions,
and the ingests of one-request uploads whose process died before it could clean up."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from datetime import timedelta
from typing import Final

from sqlalchemy import delete, select

from blobstore import BlobStore, UploadNotFound
from registry.config import UploadPurgingConfig
from registry.db import Database
from registry.db.models import upload_sessions, utcnow
from registry.holders import known_dead
from registry.leases import Leases, run_as_leader
from registry.service.upload_locks import UploadBusy, UploadGone, UploadLocks
from registry.service.uploads import end_session

log = logging.getLogger(__name__)

PURGING_LEASE: Final = "upload-purging"

_IDS_PER_QUERY = 500
_S = upload_sessions.c


async def purge_uploads(
    db: Database,
    store: BlobStore,
    locks: UploadLocks,
    *,
    older_than: timedelta,
    dry_run: bool = False,
) -> list[str]:
    """Remove upload sessions untouched for longer than `older_than`, with their ingests.
    Sessions being written right now are skipped. Returns the ids purged (or, dry, found)."""
    cutoff = utcnow() - older_than
    async with db.read() as conn:
        query = select(_S.id).where(_S.updated_at < cutoff, _S.ended_at.is_(None))
        stale = list((await conn.execute(query)).scalars())
    if dry_run:
        return stale
    # A session that ended before the cutoff was issued before it too: its id has expired.
    # (Ended after its last update, it is found through the index on updated_at.)
    expired = delete(upload_sessions).where(_S.updated_at < cutoff, _S.ended_at < cutoff)
    await db.transact(lambda conn: conn.execute(expired))
    purged: list[str] = []
    for upload_id in stale:
        try:
            async with locks.hold(upload_id) as hold:
                with contextlib.suppress(UploadNotFound):
                    await (await store.resume(upload_id)).abort()
                await db.transact(functools.partial(end_session, upload_id=upload_id))  # and hold
                hold.released()
        except (UploadBusy, UploadGone):  # being written, or finished meanwhile
            continue
        purged.append(upload_id)
    return purged


async def purge_orphaned_ingests(
    db: Database, store: BlobStore, *, older_than: timedelta, dry_run: bool = False
) -> list[str]:
    """Remove ingests that no upload session owns and nobody has written to for longer than
    `older_than`: those of one-request uploads (POST ?digest=, or a whole blob in one PUT)
    whose process crashed before it could commit or abort. Garbage collection may call this
    too. Returns the ids purged (or, dry, found)."""
    idle = await store.idle_uploads(older_than.total_seconds())
    owned: set[str] = set()
    async with db.read() as conn:
        for start in range(0, len(idle), _IDS_PER_QUERY):
            batch = idle[start : start + _IDS_PER_QUERY]
            query = select(_S.id).where(_S.id.in_(batch), _S.ended_at.is_(None))
            owned.update((await conn.execute(query)).scalars())
    orphans = [upload_id for upload_id in idle if upload_id not in owned]
    if dry_run:
        return orphans
    for upload_id in orphans:
        with contextlib.suppress(UploadNotFound):
            await (await store.resume(upload_id)).abort()
    return orphans


async def purge_forever(
    db: Database, store: BlobStore, locks: UploadLocks, config: UploadPurgingConfig
) -> None:
    """Purge every `config.interval` seconds, starting at a random point of the first minute
    (a newly elected leader does not purge the moment it takes over)."""
    await asyncio.sleep(random.uniform(1, min(60.0, max(config.interval, 1.0))))
    while True:
        try:
            found = await purge_uploads(
                db,
                store,
                locks,
                older_than=timedelta(seconds=config.age),
                dry_run=config.dryrun,
            )
            orphans = await purge_orphaned_ingests(
                db, store, older_than=timedelta(seconds=config.age), dry_run=config.dryrun
            )
            verb = "would purge" if config.dryrun else "purged"
            if found:
                log.info("%s %d abandoned upload(s)", verb, len(found))
            if orphans:
                log.info("%s %d orphaned ingest(s) of one-request uploads", verb, len(orphans))
        except Exception:
            log.exception("upload purging failed")
        await asyncio.sleep(max(config.interval, 1.0))


async def purge_on_leader(
    leases: Leases, db: Database, store: BlobStore, locks: UploadLocks, config: UploadPurgingConfig
) -> None:
    """Purge on one elected process among all workers and replicas; another takes over
    within the lease's ttl when it dies. Run as a task; cancel it to stop."""
    await run_as_leader(leases, PURGING_LEASE, lambda: purge_forever(db, store, locks, config))


async def release_dead_leader(db: Database) -> None:
    """If the purging leader was a process of this machine that has exited (this server,
    before a crash), free its lease now rather than after the ttl. Call at start-up."""
    holder = await Leases(db).holder_of(PURGING_LEASE)
    if holder is not None and known_dead(holder):
        await Leases(db, holder).release(PURGING_LEASE)
