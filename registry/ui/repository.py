"""One repository's tags, a page at a time: digest, size, platforms, pushed and pulled."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Select, func, select

from registry.db import Database
from registry.db.models import manifest_pulls, manifest_references, manifests, repositories, tags
from registry.service.repos import repository_id
from registry.ui.paging import PageSpec
from registry.ui.platforms import INDEX_TYPES, index_platforms
from registry.ui.sizes import image_sizes
from registry.ui.times import as_utc


@dataclass(frozen=True, slots=True)
class TagRow:
    name: str
    digest: str
    media_type: str
    size: int
    platforms: tuple[str, ...]
    pushed: datetime | None
    pulled: datetime | None

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


@dataclass(frozen=True, slots=True)
class Untagged:
    digest: str
    media_type: str
    pushed: datetime | None


@dataclass(frozen=True, slots=True)
class TagList:
    rows: tuple[TagRow, ...]
    total: int
    pages: int
    manifests: int  # in the repository, tagged or not
    untagged: tuple[Untagged, ...]  # images no tag, index or subject holds (newest first)

    @property
    def suggested(self) -> TagRow | None:
        """The tag a pull command shows: `latest` when it is on this page, else the first."""
        latest = [row for row in self.rows if row.name == "latest"]
        return next(iter(latest or self.rows), None)


UNTAGGED_SHOWN: Final = 50


async def list_tags(db: Database, repository: str, search: str, page: PageSpec) -> TagList | None:
    """None when the repository does not exist."""
    async with db.read() as conn:
        repo_id = await repository_id(conn, repository)
        if repo_id is None:
            return None
        matching = tags.c.repository_id == repo_id
        if search:
            matching = matching & tags.c.name.contains(search, autoescape=True)
        total = (await conn.execute(select(func.count()).where(matching))).scalar_one()
        manifest_count = (
            await conn.execute(select(func.count()).where(manifests.c.repository_id == repo_id))
        ).scalar_one()
        query = (
            select(
                tags.c.name,
                tags.c.updated_at,
                manifests.c.id,
                manifests.c.digest,
                manifests.c.media_type,
                manifests.c.payload,
                manifest_pulls.c.pulled_at,
            )
            .select_from(
                tags.join(manifests, manifests.c.id == tags.c.manifest_id).outerjoin(
                    manifest_pulls, manifest_pulls.c.manifest_id == manifests.c.id
                )
            )
            .where(matching)
            .order_by(tags.c.name)
            .limit(page.size)
            .offset(page.offset)
        )
        found = (await conn.execute(query)).all()
        sizes = await image_sizes(conn, repo_id, sorted({row.id for row in found}))
        untagged = []
        if page.number == 1 and not search:  # shown under the first page of all tags
            untagged = [
                Untagged(row.digest, row.media_type, as_utc(row.created_at))
                for row in await conn.execute(_untagged(repo_id))
            ]
    rows = tuple(
        TagRow(
            row.name,
            row.digest,
            row.media_type,
            sizes.get(row.id, 0),
            index_platforms(row.media_type, row.payload),
            as_utc(row.updated_at),
            as_utc(row.pulled_at),
        )
        for row in found
    )
    return TagList(rows, total, page.count(total), manifest_count, tuple(untagged))


def _untagged(repo_id: int) -> Select[Any]:
    parent = manifests.alias("parent")
    in_an_index = (
        select(manifest_references.c.digest)
        .join(parent, parent.c.id == manifest_references.c.manifest_id)
        .where(
            parent.c.repository_id == repo_id,
            manifest_references.c.kind == "manifest",
            manifest_references.c.digest == manifests.c.digest,
        )
    )
    tagged = select(tags.c.name).where(
        tags.c.repository_id == repo_id, tags.c.manifest_id == manifests.c.id
    )
    return (
        select(manifests.c.digest, manifests.c.media_type, manifests.c.created_at)
        .where(
            manifests.c.repository_id == repo_id,
            manifests.c.subject_digest.is_(None),
            ~tagged.exists(),
            ~in_an_index.exists(),
        )
        .order_by(manifests.c.created_at.desc())
        .limit(UNTAGGED_SHOWN)
    )


async def manifest_digest(db: Database, repository: str, reference: str) -> str | None:
    """The digest a tag (or a digest) names in `repository`, if it is there. Read here
    rather than through ManifestService.get, which counts as a pull (webhook events)."""
    query = select(manifests.c.digest).join(
        repositories, repositories.c.id == manifests.c.repository_id
    )
    if ":" in reference:
        query = query.where(manifests.c.digest == reference)
    else:
        query = query.join(tags, tags.c.manifest_id == manifests.c.id).where(
            tags.c.name == reference
        )
    async with db.read() as conn:
        found = await conn.execute(query.where(repositories.c.name == repository))
        digest: str | None = found.scalar_one_or_none()
        return digest
