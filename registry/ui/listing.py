"""The repository list: names matching a search, one page of them, and their figures.

Pages are keyset pages in name order (`after` / `before` a name), so page 200 costs what
page 1 does. Names come in batches, filtered through the viewer's policy (a set of globs,
so applied here in Python, as the catalog does) until the page is full; the policy's
literal prefixes narrow the scan in SQL first. The figures then cost one aggregate query
each over the page's repository ids, whatever the page size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import func, or_, select

from registry.db import Database, ReadConnection
from registry.db.models import blobs, manifests, repositories, repository_blobs, tags
from registry.ui.times import as_utc, latest

_BATCH: Final = 200


@dataclass(frozen=True, slots=True)
class RepositoryRow:
    name: str
    tags: int
    size: int  # bytes of the distinct blobs linked into the repository
    pushed: datetime | None


@dataclass(frozen=True, slots=True)
class RepositoryList:
    rows: tuple[RepositoryRow, ...]
    total: int | None  # None when counting would mean applying the policy to every name
    previous: str | None  # `before` for the previous page
    next: str | None  # `after` for the next page


@dataclass(frozen=True, slots=True)
class Visibility:
    """What the viewer may see: `may_pull` None for everything; `prefixes` (None: any)
    that every visible name starts with."""

    may_pull: Callable[[str], bool] | None = None
    prefixes: Sequence[str] | None = None


async def list_repositories(
    db: Database,
    search: str,
    size: int,
    visibility: Visibility,
    *,
    after: str | None = None,
    before: str | None = None,
) -> RepositoryList:
    name = repositories.c.name
    conditions = []
    if visibility.prefixes is not None:
        if not visibility.prefixes:
            return RepositoryList((), 0, None, None)
        conditions.append(or_(*(name.startswith(p, autoescape=True) for p in visibility.prefixes)))
    if search:
        conditions.append(name.contains(search, autoescape=True))
    # Every repository row, unlike the catalog's "holds a blob or a manifest": that test is an
    # OR of two EXISTS, which PostgreSQL answers by hashing every blob link, even for a page.
    # A repository emptied by deletes (or only ever uploaded to) shows with no tags.
    base = select(repositories.c.id, name).where(*conditions)
    backwards = before is not None
    async with db.read() as conn:
        total = None
        if visibility.may_pull is None:
            total = (
                await conn.execute(select(func.count()).select_from(base.subquery()))
            ).scalar_one()
        found: list[tuple[int, str]] = []
        cursor = before if backwards else after
        may_pull = visibility.may_pull
        batch_size = size + 1 if may_pull is None else _BATCH
        while len(found) <= size:
            query = base
            if cursor is not None:
                query = query.where(name < cursor if backwards else name > cursor)
            query = query.order_by(name.desc() if backwards else name).limit(batch_size)
            batch = [(row.id, row.name) for row in await conn.execute(query)]
            found += [r for r in batch if may_pull is None or may_pull(r[1])]
            if len(batch) < batch_size:
                break
            cursor = batch[-1][1]
        more = len(found) > size
        chosen = found[:size]
        if backwards:
            chosen.reverse()
        rows = await _figures(conn, chosen)
    first, last = (chosen[0][1], chosen[-1][1]) if chosen else (None, None)
    if backwards:
        return RepositoryList(rows, total, first if more else None, last)
    return RepositoryList(rows, total, first if after is not None else None, last if more else None)


async def _figures(
    conn: ReadConnection, chosen: list[tuple[int, str]]
) -> tuple[RepositoryRow, ...]:
    ids = [repo_id for repo_id, _ in chosen]
    if not ids:
        return ()
    tag_stats = {
        row.repository_id: (int(row.tag_count), as_utc(row.pushed))
        for row in await conn.execute(
            select(
                tags.c.repository_id,
                func.count().label("tag_count"),
                func.max(tags.c.updated_at).label("pushed"),
            )
            .where(tags.c.repository_id.in_(ids))
            .group_by(tags.c.repository_id)
        )
    }
    manifest_pushed = {
        row.repository_id: as_utc(row.pushed)
        for row in await conn.execute(
            select(manifests.c.repository_id, func.max(manifests.c.created_at).label("pushed"))
            .where(manifests.c.repository_id.in_(ids))
            .group_by(manifests.c.repository_id)
        )
    }
    sizes = {
        row.repository_id: int(row.size)
        for row in await conn.execute(
            select(repository_blobs.c.repository_id, func.sum(blobs.c.size).label("size"))
            .join(blobs, blobs.c.digest == repository_blobs.c.digest)
            .where(repository_blobs.c.repository_id.in_(ids))
            .group_by(repository_blobs.c.repository_id)
        )
    }
    return tuple(
        RepositoryRow(
            name,
            tag_stats.get(repo_id, (0, None))[0],
            sizes.get(repo_id, 0),
            latest(tag_stats.get(repo_id, (0, None))[1], manifest_pushed.get(repo_id)),
        )
        for repo_id, name in chosen
    )
