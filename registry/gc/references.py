"""The reference phases: untagged manifests (opt-in), then repository links nothing uses.

Candidates are listed by reads in keyset batches; each batch is then removed by one write
transaction that locks the rows a push would lock (manifest rows, blob rows) and removes
only what still meets the condition, so a push committed since the listing is seen.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import delete, select, tuple_

from registry.db import WriteConnection
from registry.db.models import blobs, manifests, repository_blobs
from registry.gc.context import Pass, repository_names
from registry.gc.queries import doomed_manifests, link_removable, reached_manifests
from registry.gc.report import Removal

_LINKS_PER_WRITE = 100  # each write holds SQLite's write lock: keep it short for pushes
_LINK_KEY = tuple_(repository_blobs.c.repository_id, repository_blobs.c.digest)


async def remove_untagged_manifests(run: Pass) -> None:
    """Manifests no tag, index or live subject reaches, and not pushed within the grace."""
    after = 0
    while True:
        query = (
            doomed_manifests(run.cutoff)
            .add_columns(manifests.c.repository_id, manifests.c.digest)
            .where(manifests.c.id > after)
            .order_by(manifests.c.id)
            .limit(run.batch)
        )
        async with run.db.read() as conn:
            rows = (await conn.execute(query)).all()
            names = await repository_names(conn, (row.repository_id for row in rows))
        if not rows:
            return
        after = rows[-1].id
        if run.dry_run:
            for row in rows:
                run.emit(Removal("manifest", row.digest, names[row.repository_id]))
            continue
        ids = [row.id for row in rows]
        repo_ids = sorted({row.repository_id for row in rows})

        async def work(
            conn: WriteConnection, ids: list[int] = ids, repo_ids: list[int] = repo_ids
        ) -> list[tuple[int, str]]:
            await conn.execute(
                select(manifests.c.id)
                .where(manifests.c.id.in_(ids))
                .order_by(manifests.c.id)
                .with_for_update()
            )
            reached = reached_manifests(run.cutoff, repo_ids)
            result = await conn.execute(
                delete(manifests)
                .where(manifests.c.id.in_(ids), manifests.c.id.not_in(select(reached.c.id)))
                .returning(manifests.c.repository_id, manifests.c.digest)
            )
            return [(int(r.repository_id), str(r.digest)) for r in result]

        for repo_id, digest in await run.db.transact(work):
            run.emit(Removal("manifest", digest, names[repo_id]))


async def remove_unused_links(run: Pass) -> None:
    """Links of blobs that no manifest of the repository references, untouched in the grace."""
    doomed = doomed_manifests(run.cutoff) if run.dry_run else None
    last = (0, "")
    while True:
        query = (
            select(repository_blobs.c.repository_id, repository_blobs.c.digest)
            .where(
                link_removable(run.cutoff, doomed),
                tuple_(repository_blobs.c.repository_id, repository_blobs.c.digest) > last,
            )
            .order_by(repository_blobs.c.repository_id, repository_blobs.c.digest)
            .limit(run.batch)
        )
        async with run.db.read() as conn:
            rows = (await conn.execute(query)).all()
            names = await repository_names(conn, (row.repository_id for row in rows))
        if not rows:
            return
        last = (rows[-1].repository_id, rows[-1].digest)
        if run.dry_run:
            for row in rows:
                run.emit(Removal("link", row.digest, names[row.repository_id]))
            continue
        for start in range(0, len(rows), _LINKS_PER_WRITE):
            pairs = [
                (row.repository_id, row.digest) for row in rows[start : start + _LINKS_PER_WRITE]
            ]
            for repo_id, digest in await run.db.transact(_remove_links(run, pairs)):
                run.emit(Removal("link", digest, names[repo_id]))


def _remove_links(
    run: Pass, pairs: list[tuple[int, str]]
) -> Callable[[WriteConnection], Awaitable[list[tuple[int, str]]]]:
    async def work(conn: WriteConnection) -> list[tuple[int, str]]:
        await conn.execute(
            select(blobs.c.digest)
            .where(blobs.c.digest.in_({digest for _, digest in pairs}))
            .order_by(blobs.c.digest)
            .with_for_update()
        )
        result = await conn.execute(
            delete(repository_blobs)
            .where(
                # The range lets SQLite seek the primary key instead of scanning the
                # table for the IN list: this transaction holds the write lock.
                _LINK_KEY.between(tuple_(*pairs[0]), tuple_(*pairs[-1])),
                _LINK_KEY.in_(pairs),
                link_removable(run.cutoff, None),
            )
            .returning(repository_blobs.c.repository_id, repository_blobs.c.digest)
        )
        return [(int(r.repository_id), str(r.digest)) for r in result]

    return work
