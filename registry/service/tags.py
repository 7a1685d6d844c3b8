"""Tag listing, in ASCII order, paginated with `n` and `last`."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, select

from registry.db import Database
from registry.db.models import tags
from registry.errcode import NAME_UNKNOWN, RegistryError
from registry.service.repos import repository_id

_PAGE = (
    select(tags.c.name)
    .where(tags.c.repository_id == bindparam("repo_id"))
    .order_by(tags.c.name)
    .limit(bindparam("limit"))
)
_PAGE_AFTER = _PAGE.where(tags.c.name > bindparam("last"))


@dataclass(frozen=True, slots=True)
class Page:
    """One page of names; `more` says whether another page follows (for the Link header)."""

    items: tuple[str, ...]
    more: bool


class TagService:
    def __init__(self, db: Database, *, max_page: int) -> None:
        self._db = db
        self._engine = db.engine
        self._max_page = max_page

    async def list(self, repo: str, n: int | None, last: str | None) -> Page:
        limit = self._max_page if n is None else min(n, self._max_page)
        if limit == 0:
            async with self._db.read() as conn:
                if await repository_id(conn, repo) is None:
                    raise RegistryError(NAME_UNKNOWN, detail={"name": repo})
            return Page((), False)
        async with self._db.read() as conn:
            repo_id = await repository_id(conn, repo)
            if repo_id is None:
                raise RegistryError(NAME_UNKNOWN, detail={"name": repo})
            query = _PAGE if last is None else _PAGE_AFTER
            params = {"repo_id": repo_id, "last": last, "limit": limit + 1}
            # all(): one fetchall, where iterating fetches row by row
            rows = (await conn.execute(query, params)).scalars().all()
        # SQL collations may differ from byte order; the spec wants Go's sort.Strings.
        return Page(tuple(sorted(rows[:limit])), len(rows) > limit)
