"""Image sizes in one query: the distinct blobs (config and layers) a manifest references,
through its children for an index, summed per manifest."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, func, select, union

from registry.db import ReadConnection
from registry.db.models import blobs, manifest_references, manifests


async def image_sizes(
    conn: ReadConnection, repository_id: int, manifest_ids: Sequence[int]
) -> dict[int, int]:
    """manifest id -> bytes of the distinct blobs it (or, for an index, its children) uses."""
    if not manifest_ids:
        return {}
    refs = manifest_references
    own = select(refs.c.manifest_id.label("root"), refs.c.digest).where(
        refs.c.manifest_id.in_(manifest_ids), refs.c.kind != "manifest"
    )
    parent, child, child_refs = refs.alias("p"), manifests.alias("c"), refs.alias("cr")
    nested = (
        select(parent.c.manifest_id.label("root"), child_refs.c.digest)
        .select_from(
            parent.join(
                child,
                and_(child.c.repository_id == repository_id, child.c.digest == parent.c.digest),
            ).join(
                child_refs,
                and_(child_refs.c.manifest_id == child.c.id, child_refs.c.kind != "manifest"),
            )
        )
        .where(parent.c.manifest_id.in_(manifest_ids), parent.c.kind == "manifest")
    )
    used = union(own, nested).subquery()  # UNION: a blob two children share counts once
    query = (
        select(used.c.root, func.sum(blobs.c.size).label("size"))
        .join(blobs, blobs.c.digest == used.c.digest)
        .group_by(used.c.root)
    )
    return {row.root: int(row.size) for row in await conn.execute(query)}
