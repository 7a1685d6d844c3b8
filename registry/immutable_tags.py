"""Immutable tags: once pushed, a tag matching an `immutabletags:` rule keeps its manifest.

Such a tag cannot be moved to another manifest or deleted, and its manifest cannot be deleted
by digest while the tag points at it; each refusal is DENIED with a message naming the tag.
Putting the identical manifest again is allowed. The checks run inside the write transaction
of the change they guard. A protected tag is claimed with INSERT .. ON CONFLICT DO NOTHING
and read back, so of two pushes racing to create it the second sees the first's manifest
and is refused, instead of overwriting it as an upsert would.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from registry.config import ImmutableTagRule
from registry.db import WriteConnection, insert_ignore
from registry.db.models import manifests, tags, utcnow
from registry.errcode import TAG_IMMUTABLE, RegistryError
from registry.globs import matches_any

__all__ = ["ImmutableTags"]


class ImmutableTags:
    """The `immutabletags:` rules. With none matching a repository, checks run no query."""

    def __init__(self, rules: Iterable[ImmutableTagRule] = ()) -> None:
        self._rules = tuple(rules)

    def protects(self, repository: str, tag: str) -> bool:
        return any(
            matches_any(rule.repositories, repository) and matches_any(rule.tags, tag)
            for rule in self._rules
        )

    async def claim(
        self, conn: WriteConnection, repo_id: int, repository: str, tag: str, manifest_id: int
    ) -> None:
        """Before a manifest PUT points `tag` at `manifest_id`: refuse to move a protected tag."""
        if not self.protects(repository, tag):
            return
        await conn.execute(
            insert_ignore(conn, tags, ["repository_id", "name"]).values(
                repository_id=repo_id, name=tag, manifest_id=manifest_id, updated_at=utcnow()
            )
        )
        current = (
            await conn.execute(
                select(tags.c.manifest_id, manifests.c.digest)
                .join(manifests, manifests.c.id == tags.c.manifest_id)
                .where(tags.c.repository_id == repo_id, tags.c.name == tag)
            )
        ).one()
        if current.manifest_id != manifest_id:
            raise RegistryError(
                TAG_IMMUTABLE,
                message=f"tag {tag} of {repository} is immutable: it points to {current.digest} "
                "and cannot be moved to another manifest",
                detail={"tag": tag, "digest": current.digest},
            )

    async def check_tag_delete(
        self, conn: WriteConnection, repo_id: int, repository: str, tag: str
    ) -> None:
        if not self.protects(repository, tag):
            return
        exists = await conn.execute(
            select(tags.c.name).where(tags.c.repository_id == repo_id, tags.c.name == tag)
        )
        if exists.first() is not None:
            raise RegistryError(
                TAG_IMMUTABLE,
                message=f"tag {tag} of {repository} is immutable and cannot be deleted",
                detail={"tag": tag},
            )

    async def check_manifest_delete(
        self, conn: WriteConnection, repository: str, manifest_id: int, digest: str
    ) -> None:
        if not any(matches_any(rule.repositories, repository) for rule in self._rules):
            return
        names = await conn.execute(select(tags.c.name).where(tags.c.manifest_id == manifest_id))
        protected = sorted(name for name in names.scalars() if self.protects(repository, name))
        if protected:
            raise RegistryError(
                TAG_IMMUTABLE,
                message=f"manifest {digest} of {repository} is tagged {protected[0]}, an "
                "immutable tag, and cannot be deleted",
                detail={"tag": protected[0], "digest": digest},
            )
