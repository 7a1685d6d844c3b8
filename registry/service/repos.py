"""Repository rows: looked up by name, created on first write."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from registry.db import insert_ignore
from registry.db.models import repositories


async def repository_id(conn: AsyncConnection, name: str) -> int | None:
    result = await conn.execute(select(repositories.c.id).where(repositories.c.name == name))
    return result.scalar_one_or_none()


async def ensure_repository(conn: AsyncConnection, name: str) -> int:
    """The id of repository `name`, creating it if needed (safe against concurrent creators)."""
    found = await repository_id(conn, name)
    if found is not None:
        return found
    await conn.execute(insert_ignore(conn, repositories, ["name"]).values(name=name))
    created = await repository_id(conn, name)
    assert created is not None
    return created
