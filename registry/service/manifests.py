"""Manifests and tags: exact bytes in SQL, references recorded for GC, validated on the way in."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, select

from blobstore import Digest
from registry.db import Database, WriteConnection, insert_ignore, upsert_row
from registry.db.models import (
    blobs,
    manifest_references,
    manifests,
    repositories,
    repository_blobs,
    tags,
    utcnow,
)
from registry.errcode import (
    DIGEST_INVALID,
    MANIFEST_BLOB_UNKNOWN,
    MANIFEST_UNKNOWN,
    NAME_UNKNOWN,
    UNSUPPORTED,
    RegistryError,
)
from registry.immutable_tags import ImmutableTags
from registry.manifest import ParsedManifest, parse_manifest
from registry.quota import Quotas
from registry.service.pins import LIVE
from registry.service.repos import ensure_repository, repository_id
from registry.webhooks import Outbox


@dataclass(frozen=True, slots=True)
class StoredManifest:
    digest: str
    media_type: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class PutResult:
    digest: Digest
    subject: Digest | None
    tags: tuple[str, ...]


_COLUMNS = (manifests.c.digest, manifests.c.media_type, manifests.c.payload)
# Built once: constructing a select() costs more than running it on SQLite.
_BY_DIGEST = (
    select(*_COLUMNS)
    .join(repositories, repositories.c.id == manifests.c.repository_id)
    .where(repositories.c.name == bindparam("repo"), manifests.c.digest == bindparam("ref"))
)
_BY_TAG = (
    select(*_COLUMNS)
    .select_from(
        tags.join(manifests, manifests.c.id == tags.c.manifest_id).join(
            repositories, repositories.c.id == tags.c.repository_id
        )
    )
    .where(repositories.c.name == bindparam("repo"), tags.c.name == bindparam("ref"))
)

# A push runs these (registry.db.sqlite_direct plans statements built once).
_FIND_SHARED = (
    select(manifests.c.id)
    .where(
        manifests.c.repository_id == bindparam("_repo_id"),
        manifests.c.digest == bindparam("_digest"),
    )
    .with_for_update(read=True)  # a collection deleting it untagged waits, or went first
)


async def _point_tag(conn: WriteConnection, repo_id: int, name: str, manifest_id: int) -> None:
    values = {
        "repository_id": repo_id,
        "name": name,
        "manifest_id": manifest_id,
        "updated_at": utcnow(),
    }
    await conn.execute(upsert_row(conn, tags, ["repository_id", "name"], list(values)), values)


class ManifestService:
    def __init__(
        self,
        db: Database,
        *,
        delete_enabled: bool,
        immutable: ImmutableTags | None = None,
        quotas: Quotas | None = None,
        events: Outbox | None = None,
    ) -> None:
        self._db = db
        self._engine = db.engine
        self._delete_enabled = delete_enabled
        self._immutable = immutable or ImmutableTags()
        self._quotas = quotas or Quotas()
        self._events = events or Outbox()

    async def get(self, repo: str, reference: Digest | str) -> StoredManifest:
        """A pull, by tag or digest; NAME_UNKNOWN for an unknown repository, else
        MANIFEST_UNKNOWN."""
        stored = await self.find(repo, reference)
        await self.pulled(repo, stored, reference)
        return stored

    async def find(self, repo: str, reference: Digest | str) -> StoredManifest:
        """`get` without the pull event: a lookup."""
        query = _BY_DIGEST if isinstance(reference, Digest) else _BY_TAG
        params = {"repo": repo, "ref": str(reference)}
        async with self._db.read() as conn:
            row = (await conn.execute(query, params)).first()
            if row is None and await repository_id(conn, repo) is None:
                raise RegistryError(NAME_UNKNOWN, detail={"name": repo})
        if row is None:
            raise RegistryError(MANIFEST_UNKNOWN, detail={"reference": str(reference)})
        digest, media_type, payload = tuple(row)  # a Row or, on the fast path, a tuple
        return StoredManifest(digest, media_type, payload)

    async def pulled(self, repo: str, stored: StoredManifest, reference: Digest | str) -> None:
        """A pull of `stored` by `reference` (webhook `pull` events for endpoints that want
        them); `get` records it, the pull-through cache calls it itself."""
        tag = "" if isinstance(reference, Digest) else str(reference)
        self._events.manifest_pulled(
            repo, stored.digest, stored.media_type, len(stored.payload), tag
        )

    async def put(
        self,
        repo: str,
        reference: Digest | str,
        payload: bytes,
        content_type: str | None,
        extra_tags: Sequence[str] = (),
    ) -> PutResult:
        algorithm = reference.algorithm if isinstance(reference, Digest) else "sha256"
        parsed = parse_manifest(payload, content_type, algorithm)
        if isinstance(reference, Digest) and parsed.digest != reference:
            raise RegistryError(
                DIGEST_INVALID, detail={"expected": str(reference), "actual": str(parsed.digest)}
            )
        tag_names = ([reference] if isinstance(reference, str) else []) + list(extra_tags)

        async def work(conn: WriteConnection) -> None:
            repo_id = await ensure_repository(conn, repo)
            await _check_references(conn, repo_id, parsed)
            manifest_id = await _store(conn, repo_id, parsed, payload)
            for name in dict.fromkeys(tag_names):
                await self._immutable.claim(conn, repo_id, repo, name, manifest_id)
                await _point_tag(conn, repo_id, name, manifest_id)
            await self._quotas.enforce(conn, repo)
            await self._events.manifest_pushed(
                conn, repo, str(parsed.digest), parsed.media_type, len(payload), tag_names
            )

        await self._db.transact(work)
        subject = parsed.subject.digest if parsed.subject else None
        return PutResult(parsed.digest, subject, tuple(dict.fromkeys(extra_tags)))

    async def store_fetched(
        self, repo: str, tag: str | None, payload: bytes, content_type: str | None, digest: Digest
    ) -> StoredManifest:
        """Keep a manifest the pull-through cache fetched (registry.proxy), tagged `tag`.
        Its blobs and children come later, when clients ask for them, so unlike `put` this
        does not require them; nor is it a push (no event, no quota check)."""
        parsed = parse_manifest(payload, content_type, digest.algorithm)
        if parsed.digest != digest:
            raise RegistryError(
                DIGEST_INVALID, detail={"expected": str(digest), "actual": str(parsed.digest)}
            )

        async def work(conn: WriteConnection) -> None:
            repo_id = await ensure_repository(conn, repo)
            manifest_id = await _store(conn, repo_id, parsed, payload)
            if tag is not None:
                await _point_tag(conn, repo_id, tag, manifest_id)

        await self._db.transact(work)
        return StoredManifest(str(parsed.digest), parsed.media_type, payload)

    async def delete(self, repo: str, reference: Digest | str) -> None:
        """By digest: the manifest and every tag on it. By tag: only the tag (OCI 1.1)."""
        if not self._delete_enabled:
            raise RegistryError(UNSUPPORTED, detail="deletion is disabled (storage.delete.enabled)")

        async def work(conn: WriteConnection) -> int:
            repo_id = await repository_id(conn, repo)
            if repo_id is None:
                raise RegistryError(NAME_UNKNOWN, detail={"name": repo})
            if isinstance(reference, str):
                await self._immutable.check_tag_delete(conn, repo_id, repo, reference)
                result = await conn.execute(
                    delete(tags).where(tags.c.repository_id == repo_id, tags.c.name == reference)
                )
                if result.rowcount:
                    await self._events.tag_deleted(conn, repo, reference)
                return result.rowcount
            found = (
                await conn.execute(
                    select(manifests.c.id).where(
                        manifests.c.repository_id == repo_id, manifests.c.digest == str(reference)
                    )
                )
            ).scalar_one_or_none()
            if found is None:
                return 0
            await self._immutable.check_manifest_delete(conn, repo, found, str(reference))
            await conn.execute(delete(tags).where(tags.c.manifest_id == found))
            await conn.execute(
                delete(manifest_references).where(manifest_references.c.manifest_id == found)
            )
            await conn.execute(delete(manifests).where(manifests.c.id == found))
            await self._events.manifest_deleted(conn, repo, str(reference))
            return 1

        if await self._db.transact(work) == 0:
            raise RegistryError(MANIFEST_UNKNOWN, detail={"reference": str(reference)})


async def _check_references(conn: WriteConnection, repo_id: int, parsed: ParsedManifest) -> None:
    blob_digests = [d.digest for d in (parsed.config, *parsed.layers) if d and d.distributable]
    if blob_digests:
        wanted = {str(d) for d in blob_digests}
        # Share-lock the blob rows first (in digest order, as the collector locks them), so a
        # collection removing a link or marking a blob waits for this transaction, or this one
        # sees what it did (docs/gc.md). SQLite's write lock already serialises both.
        await conn.execute(
            select(blobs.c.digest)
            .where(blobs.c.digest.in_(wanted))
            .order_by(blobs.c.digest)
            .with_for_update(read=True)
        )
        linked = set(
            (
                await conn.execute(
                    select(repository_blobs.c.digest)
                    .join(blobs, blobs.c.digest == repository_blobs.c.digest)
                    .where(
                        repository_blobs.c.repository_id == repo_id,
                        repository_blobs.c.digest.in_(wanted),
                        blobs.c.state == LIVE,
                    )
                )
            ).scalars()
        )
        missing = sorted(wanted - linked)
        if missing:
            raise RegistryError(MANIFEST_BLOB_UNKNOWN, detail={"digest": missing[0]})
    if parsed.children:
        wanted = {str(d.digest) for d in parsed.children}
        present = set(
            (
                await conn.execute(
                    select(manifests.c.digest)
                    .where(manifests.c.repository_id == repo_id, manifests.c.digest.in_(wanted))
                    .order_by(manifests.c.id)
                    .with_for_update(read=True)
                )
            ).scalars()
        )
        missing = sorted(wanted - present)
        if missing:
            raise RegistryError(MANIFEST_BLOB_UNKNOWN, detail={"digest": missing[0]})


async def _store(
    conn: WriteConnection, repo_id: int, parsed: ParsedManifest, payload: bytes
) -> int:
    row = {
        "repository_id": repo_id,
        "digest": str(parsed.digest),
        "media_type": parsed.media_type,
        "artifact_type": parsed.artifact_type,
        "subject_digest": str(parsed.subject.digest) if parsed.subject else None,
        "annotations": json.dumps(parsed.annotations) if parsed.annotations else None,
        "size": len(payload),
        "payload": payload,
    }
    key = {"_repo_id": repo_id, "_digest": str(parsed.digest)}
    manifest_id = None
    for _ in range(2):  # the second round: a collection deleted it after our insert
        await conn.execute(insert_ignore(conn, manifests, ["repository_id", "digest"]), row)
        manifest_id = (await conn.execute(_FIND_SHARED, key)).scalar_one_or_none()
        if manifest_id is not None:
            break
    assert manifest_id is not None
    refs = [("config", parsed.config)] if parsed.config else []
    refs += [("layer", d) for d in parsed.layers] + [("manifest", d) for d in parsed.children]
    reference = insert_ignore(conn, manifest_references, ["manifest_id", "kind", "digest"])
    for kind, descriptor in refs:
        values = {"manifest_id": manifest_id, "kind": kind, "digest": str(descriptor.digest)}
        await conn.execute(reference, values)
    return int(manifest_id)
