"""Tag listing, in ASCII order, paginated with `n` and `last`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Text, bindparam, case, cast, func, literal, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.sql import Select

from registry.db import Database
from registry.db.models import repositories, tags
from registry.errcode import NAME_UNKNOWN, RegistryError


@dataclass(frozen=True, slots=True)
class Page:
    """One page of names; `more` says whether another page follows (for the Link header)."""

    items: tuple[str, ...]
    more: bool


@dataclass(frozen=True, slots=True)
class TagPage:
    """One page of tag names as the JSON array text SQL built (`["a","b"]`), with the page's
    last name (for the Link header) and whether another page follows."""

    names_json: str
    last: str | None
    more: bool


def _page_query(dialect: str) -> Select[Any]:
    """One statement for a whole page: the repository's id (NULL: no such repository), the
    page's names as a JSON array, its last name, and the first name after it (NULL: no more).

    The database builds the JSON: fetching 500 names as rows through SQLAlchemy and encoding
    them again was more than half of a 500-tag listing. The last name and the next one are
    index look-ups by offset (max() over the page doubled SQLite's time), made only when the
    page is full. Names compare and sort byte-wise, as the spec wants (Go's sort.Strings):
    SQLite's default collation does; on PostgreSQL "C" does, whatever the database's locale."""
    repo_id = select(repositories.c.id).where(repositories.c.name == bindparam("repo"))
    name = tags.c.name if dialect == "sqlite" else tags.c.name.collate("C")
    after = (
        select(tags.c.name.label("name"))
        .where(tags.c.repository_id == repo_id.scalar_subquery(), name > bindparam("last"))
        .order_by(name)
    )
    page = after.limit(bindparam("limit")).subquery()
    if dialect == "sqlite":
        # An aggregate sees the rows of an ordered, limited subquery in its order.
        names = func.json_group_array(page.c.name)
    else:
        in_order = aggregate_order_by(page.c.name, page.c.name.collate("C"))
        names = func.coalesce(cast(func.json_agg(in_order), Text), literal("[]"))
    full = func.count() == bindparam("limit")  # else neither look-up runs: no next page
    return select(
        repo_id.scalar_subquery().label("repo_id"),
        names.label("names"),
        case((full, after.offset(bindparam("final")).limit(1).scalar_subquery())).label("last"),
        case((full, after.offset(bindparam("limit")).limit(1).scalar_subquery())).label(
            "following"
        ),
    ).select_from(page)


class TagService:
    def __init__(self, db: Database, *, max_page: int) -> None:
        self._db = db
        self._engine = db.engine
        self._max_page = max_page
        self._query = _page_query(db.engine.dialect.name)

    async def list(self, repo: str, n: int | None, last: str | None) -> TagPage:
        limit = self._max_page if n is None else min(n, self._max_page)
        # Every tag name is non-empty, so "" means "from the start".
        params = {"repo": repo, "last": last or "", "limit": limit, "final": max(limit - 1, 0)}
        async with self._db.read() as conn:
            row = (await conn.execute(self._query, params)).one()
        repo_id, names, page_last, following = tuple(row)
        if repo_id is None:
            raise RegistryError(NAME_UNKNOWN, detail={"name": repo})
        if limit == 0:
            return TagPage("[]", None, False)
        return TagPage(names, page_last, following is not None)
