"""The repository catalog, filtered by what the caller may pull, paginated like tags."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import exists, or_, select

from registry.db import Database
from registry.db.models import manifests, repositories, repository_blobs
from registry.service.tags import Page

_BATCH = 500
# As in Distribution, a repository is listed once it holds something: a blob or a manifest
# (not merely an upload that was started).
_LISTED = select(repositories.c.name).where(
    or_(
        exists().where(repository_blobs.c.repository_id == repositories.c.id),
        exists().where(manifests.c.repository_id == repositories.c.id),
    )
)


class CatalogService:
    def __init__(self, db: Database, *, max_page: int) -> None:
        self._db = db
        self._engine = db.engine
        self._max_page = max_page

    async def list(self, n: int | None, last: str | None, may_pull: Callable[[str], bool]) -> Page:
        limit = self._max_page if n is None else min(n, self._max_page)
        if limit == 0:
            return Page((), False)
        found: list[str] = []
        cursor = last
        async with self._db.read() as conn:
            while True:
                query = _LISTED.order_by(repositories.c.name).limit(_BATCH)
                if cursor is not None:
                    query = query.where(repositories.c.name > cursor)
                batch = list((await conn.execute(query)).scalars())
                for name in batch:
                    if may_pull(name):
                        found.append(name)
                        if len(found) > limit:
                            return Page(tuple(found[:limit]), True)
                if len(batch) < _BATCH:
                    return Page(tuple(found), False)
                cursor = batch[-1]
