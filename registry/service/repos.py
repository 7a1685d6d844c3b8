"""Repository rows: looked up by name, created on first write."""

from __future__ import annotations

from sqlalchemy import bindparam, select

from registry.db import ReadConnection, WriteConnection, insert_ignore
from registry.db.models import repositories

_ID_BY_NAME = select(repositories.c.id).where(repositories.c.name == bindparam("name"))


async def repository_id(conn: ReadConnection, name: str) -> int | None:
    result = await conn.execute(_ID_BY_NAME, {"name": name})
    found: int | None = result.scalar_one_or_none()
    return found


async def ensure_repository(conn: WriteConnection, name: str) -> int:
    """The id of repository `name`, creating it if needed (safe against concurrent creators)."""
    found = await repository_id(conn, name)
    if found is not None:
        return found
    await conn.execute(insert_ignore(conn, repositories, ["name"]), {"name": name})
    created = await repository_id(conn, name)
    assert created is not None
    return created
