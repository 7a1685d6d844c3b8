"""Cached tags and when each was last checked against its upstream (table proxy_tag_checks)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, select

from registry.db import Database, WriteConnection, upsert_row
from registry.db.models import as_utc, manifests, proxy_tag_checks, repositories, tags
from registry.service import StoredManifest
from registry.service.repos import repository_id

_CACHED_TAG = (
    select(
        manifests.c.digest,
        manifests.c.media_type,
        manifests.c.payload,
        proxy_tag_checks.c.checked_at,
    )
    .select_from(
        tags.join(manifests, manifests.c.id == tags.c.manifest_id)
        .join(repositories, repositories.c.id == tags.c.repository_id)
        .outerjoin(
            proxy_tag_checks,
            and_(
                proxy_tag_checks.c.repository_id == tags.c.repository_id,
                proxy_tag_checks.c.name == tags.c.name,
            ),
        )
    )
    .where(repositories.c.name == bindparam("repo"), tags.c.name == bindparam("tag"))
)


@dataclass(frozen=True, slots=True)
class CachedTag:
    manifest: StoredManifest
    checked_at: datetime | None  # None: never checked upstream (e.g. cached before a restart)


async def cached_tag(db: Database, repo: str, tag: str) -> CachedTag | None:
    async with db.read() as conn:
        row = (await conn.execute(_CACHED_TAG, {"repo": repo, "tag": tag})).first()
    if row is None:
        return None
    manifest = StoredManifest(row.digest, row.media_type, row.payload)
    checked = None if row.checked_at is None else as_utc(row.checked_at)
    return CachedTag(manifest, checked)


async def mark_checked(db: Database, repo: str, tag: str, when: datetime) -> None:
    async def work(conn: WriteConnection) -> None:
        repo_id = await repository_id(conn, repo)
        if repo_id is None:
            return
        values = {"repository_id": repo_id, "name": tag, "checked_at": when}
        keys = ["repository_id", "name"]
        await conn.execute(upsert_row(conn, proxy_tag_checks, keys, list(values)), values)

    await db.transact(work)
