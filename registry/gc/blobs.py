"""The blob phases: mark, delete bytes, forget the row.

A blob is marked `deleting` by a transaction that locks its row and re-checks that nothing
references, links or pins it and that it was not touched in the grace; only after that
commits are its bytes deleted, and then its row. Whatever a crash interrupts between the
two is finished by the next pass (`finish_marked`). Files the database has no row for
(orphans) get a `deleting` row first, through the same insert a push would conflict with.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Final

from sqlalchemy import delete, select, update

from blobstore import BlobInfo, BlobNotFound, Digest
from registry.db import WriteConnection, insert_ignore
from registry.db.models import blob_pins, blobs, utcnow
from registry.gc.context import Pass
from registry.gc.queries import blob_removable, doomed_manifests
from registry.gc.report import Removal
from registry.service.pins import DELETING

_PARALLEL_DELETES: Final = 16  # bounded: an S3 store deletes over the network


async def finish_marked(run: Pass) -> None:
    """Delete the bytes and rows of blobs an interrupted pass had marked."""
    if run.dry_run:
        return
    after = ""
    while True:
        query = (
            select(blobs.c.digest)
            .where(blobs.c.state == DELETING, blobs.c.digest > after)
            .order_by(blobs.c.digest)
            .limit(run.batch)
        )
        async with run.db.read() as conn:
            digests = list((await conn.execute(query)).scalars())
        if not digests:
            return
        after = digests[-1]
        await _sweep(run, digests)


async def remove_unused_blobs(run: Pass) -> None:
    """Blobs nothing references, links or pins, untouched within the grace."""
    doomed = doomed_manifests(run.cutoff) if run.dry_run else None
    after = ""
    while True:
        query = (
            select(blobs.c.digest, blobs.c.size)
            .where(blob_removable(run.cutoff, run.now, doomed), blobs.c.digest > after)
            .order_by(blobs.c.digest)
            .limit(run.batch)
        )
        async with run.db.read() as conn:
            rows = (await conn.execute(query)).all()
        if not rows:
            return
        after = rows[-1].digest
        if run.dry_run:
            for row in rows:
                run.emit(Removal("blob", row.digest, size=row.size))
            continue
        candidates = [row.digest for row in rows]

        async def mark(conn: WriteConnection, candidates: list[str] = candidates) -> list[str]:
            await conn.execute(
                select(blobs.c.digest)
                .where(blobs.c.digest.in_(candidates))
                .order_by(blobs.c.digest)
                .with_for_update()
            )
            result = await conn.execute(
                update(blobs)
                .where(blobs.c.digest.in_(candidates), blob_removable(run.cutoff, run.now, None))
                .values(state=DELETING)
                .returning(blobs.c.digest)
            )
            return [str(digest) for digest in result.scalars()]

        await _sweep(run, await run.db.transact(mark))


async def remove_orphan_files(run: Pass) -> None:
    """Stored blobs the database has no row for (left by a crash or copied in by hand)."""
    batch: list[BlobInfo] = []
    async for info in run.store.walk():
        batch.append(info)
        if len(batch) >= run.batch:
            await _remove_orphans(run, batch)
            batch = []
    if batch:
        await _remove_orphans(run, batch)


async def _remove_orphans(run: Pass, batch: list[BlobInfo]) -> None:
    async with run.db.read() as conn:
        known = set(
            (
                await conn.execute(
                    select(blobs.c.digest).where(blobs.c.digest.in_([str(i.digest) for i in batch]))
                )
            ).scalars()
        )
    orphans = [info for info in batch if str(info.digest) not in known]
    if not orphans:
        return
    if run.dry_run:
        for info in orphans:
            run.emit(Removal("blob", str(info.digest), size=info.size))
        return
    rows = [
        {"digest": str(i.digest), "size": i.size, "state": DELETING, "created_at": utcnow()}
        for i in orphans
    ]

    async def claim(conn: WriteConnection) -> list[str]:
        # A push pinning the same digest inserts the same row: one of the two waits.
        result = await conn.execute(
            insert_ignore(conn, blobs, ["digest"]).values(rows).returning(blobs.c.digest)
        )
        return [str(digest) for digest in result.scalars()]

    await _sweep(run, await run.db.transact(claim))


async def _sweep(run: Pass, marked: Sequence[str]) -> None:
    """Delete the bytes of blobs marked `deleting` (committed), then their rows."""
    if not marked:
        return
    limit = asyncio.Semaphore(_PARALLEL_DELETES)

    async def delete_bytes(digest: str) -> int:
        async with limit:
            parsed = Digest.parse(digest)
            try:
                size = (await run.store.stat(parsed)).size
            except BlobNotFound:
                size = 0
            await run.store.delete(parsed)
            return size

    sizes = await asyncio.gather(*(delete_bytes(digest) for digest in marked))

    async def forget(conn: WriteConnection) -> None:
        await conn.execute(delete(blob_pins).where(blob_pins.c.digest.in_(marked)))
        await conn.execute(
            delete(blobs).where(blobs.c.digest.in_(marked), blobs.c.state == DELETING)
        )

    await run.db.transact(forget)
    for digest, size in zip(marked, sizes, strict=True):
        run.emit(Removal("blob", digest, size=size))
