"""The referrers API: manifests in a repository whose `subject` is a given digest."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from blobstore import Digest
from registry.db import Database
from registry.db.models import manifests, repositories


class ReferrerService:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._engine = db.engine

    async def list(
        self, repo: str, subject: Digest, artifact_type: str | None
    ) -> list[dict[str, Any]]:
        """Descriptors of the referrers, each with artifactType and annotations, oldest first."""
        query = (
            select(
                manifests.c.digest,
                manifests.c.media_type,
                manifests.c.size,
                manifests.c.artifact_type,
                manifests.c.annotations,
            )
            .join(repositories, repositories.c.id == manifests.c.repository_id)
            .where(repositories.c.name == repo, manifests.c.subject_digest == str(subject))
            .order_by(manifests.c.id)
        )
        if artifact_type is not None:
            query = query.where(manifests.c.artifact_type == artifact_type)
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        descriptors: list[dict[str, Any]] = []
        for row in rows:
            descriptor: dict[str, Any] = {
                "mediaType": row.media_type,
                "digest": row.digest,
                "size": row.size,
            }
            if row.artifact_type:
                descriptor["artifactType"] = row.artifact_type
            if row.annotations:
                descriptor["annotations"] = json.loads(row.annotations)
            descriptors.append(descriptor)
        return descriptors
