"""The repository list: names matching a search, a page of them, and their figures.

A page costs a fixed number of queries whatever its size: the names (with the count), then
one aggregate per figure over the page's repository ids. When the viewer may not pull
everything, the policy is applied to the names in Python (it is a set of globs) before
slicing, as the catalog does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func, or_, select

from registry.db import Database, ReadConnection
from registry.db.models import blobs, manifests, repositories, repository_blobs, tags
from registry.ui.pages import PageSpec
from registry.ui.times import as_utc, latest


@dataclass(frozen=True, slots=True)
class RepositoryRow:
    name: str
    tags: int
    size: int  # bytes of the distinct blobs linked into the repository
    pushed: datetime | None


@dataclass(frozen=True, slots=True)
class RepositoryList:
    rows: tuple[RepositoryRow, ...]
    total: int
    pages: int


# As the catalog: a repository is listed once it holds a blob or a manifest.
_LISTED = or_(
    exists().where(repository_blobs.c.repository_id == repositories.c.id),
    exists().where(manifests.c.repository_id == repositories.c.id),
)


async def list_repositories(
    db: Database, search: str, page: PageSpec, may_pull: Callable[[str], bool] | None
) -> RepositoryList:
    names = select(repositories.c.id, repositories.c.name).where(_LISTED)
    if search:
        names = names.where(repositories.c.name.contains(search, autoescape=True))
    async with db.read() as conn:
        if may_pull is None:
            total = (
                await conn.execute(select(func.count()).select_from(names.subquery()))
            ).scalar_one()
            query = names.order_by(repositories.c.name).limit(page.size).offset(page.offset)
            chosen = [(row.id, row.name) for row in await conn.execute(query)]
        else:
            everything = await conn.execute(names.order_by(repositories.c.name))
            visible = [(row.id, row.name) for row in everything if may_pull(row.name)]
            total = len(visible)
            chosen = visible[page.offset : page.offset + page.size]
        rows = await _figures(conn, chosen)
    return RepositoryList(rows, total, page.count(total))


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
