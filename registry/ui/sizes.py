"""Image sizes: the distinct blobs (config and layers) a manifest references, through its
children for an index, summed per manifest. A fixed number of indexed look-ups for a whole
page of manifests; the sums are done here, where sharing between children is plain sets."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from registry.db import ReadConnection
from registry.db.models import blobs, manifest_references, manifests


async def _references(conn: ReadConnection, ids: Sequence[int]) -> dict[int, list[tuple[str, str]]]:
    found: dict[int, list[tuple[str, str]]] = {}
    if ids:
        query = select(
            manifest_references.c.manifest_id,
            manifest_references.c.kind,
            manifest_references.c.digest,
        ).where(manifest_references.c.manifest_id.in_(ids))
        for row in await conn.execute(query):
            found.setdefault(row.manifest_id, []).append((row.kind, row.digest))
    return found


async def image_sizes(
    conn: ReadConnection, repository_id: int, manifest_ids: Sequence[int]
) -> dict[int, int]:
    """manifest id -> bytes of the distinct blobs it (or, for an index, its children) uses."""
    refs = await _references(conn, manifest_ids)
    child_digests = {d for rs in refs.values() for kind, d in rs if kind == "manifest"}
    children: dict[str, int] = {}
    if child_digests:
        query = select(manifests.c.digest, manifests.c.id).where(
            manifests.c.repository_id == repository_id, manifests.c.digest.in_(child_digests)
        )
        children = {row.digest: row.id for row in await conn.execute(query)}
    child_refs = await _references(conn, list(children.values()))
    used: dict[int, set[str]] = {}
    for manifest_id, rs in refs.items():
        digests = used.setdefault(manifest_id, set())
        for kind, digest in rs:
            if kind != "manifest":
                digests.add(digest)
            elif digest in children:
                digests.update(
                    d for k, d in child_refs.get(children[digest], ()) if k != "manifest"
                )
    wanted = set().union(*used.values()) if used else set()
    sizes: dict[str, int] = {}
    if wanted:
        query = select(blobs.c.digest, blobs.c.size).where(blobs.c.digest.in_(wanted))
        sizes = {row.digest: row.size for row in await conn.execute(query)}
    return {m: sum(sizes.get(d, 0) for d in digests) for m, digests in used.items()}
