"""The oracle for quota counters: usage recomputed by SQL aggregates from the source tables."""

from __future__ import annotations

from sqlalchemy import func, or_, select, union_all

from registry.db import ReadConnection
from registry.db.models import blobs, manifests, quota_usage, repositories, repository_blobs
from registry.quota import Scope


async def recount(conn: ReadConnection, scope: Scope) -> int:
    """Bytes of the distinct contents (linked blobs, manifests) of the scope's repositories."""
    name = repositories.c.name
    where = name == scope.name
    if scope.kind == "namespace":
        where = or_(where, name.startswith(scope.name + "/", autoescape=True))
    ids = select(repositories.c.id).where(where)
    contents = union_all(
        select(blobs.c.digest, blobs.c.size)
        .join(repository_blobs, repository_blobs.c.digest == blobs.c.digest)
        .where(repository_blobs.c.repository_id.in_(ids)),
        select(manifests.c.digest, manifests.c.size).where(manifests.c.repository_id.in_(ids)),
    ).subquery()
    distinct = select(contents.c.digest, func.max(contents.c.size).label("size")).group_by(
        contents.c.digest
    )
    total = select(func.coalesce(func.sum(distinct.subquery().c.size), 0))
    return int((await conn.execute(total)).scalar_one())


async def counted_scopes(conn: ReadConnection) -> dict[Scope, int]:
    """Every counter the triggers keep, by scope (zeros left out)."""
    rows = await conn.execute(select(quota_usage.c.scope, quota_usage.c.bytes))
    found = {}
    for row in rows:
        kind, name = str(row.scope).split(":", 1)
        if row.bytes:
            found[Scope(kind, name)] = int(row.bytes)
    return found


async def assert_counters_match(conn: ReadConnection) -> None:
    """Each scope's counter equals its recount, for every repository and namespace there is."""
    names = (await conn.execute(select(repositories.c.name))).scalars().all()
    scopes = {Scope("repository", n) for n in names} | {
        Scope("namespace", n.split("/", 1)[0]) for n in names
    }
    expected = {s: n for s in scopes if (n := await recount(conn, s))}
    assert await counted_scopes(conn) == expected
