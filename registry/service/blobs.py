"""Blobs as repositories see them: a blob is visible in a repository only where it is linked."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

from sqlalchemy import bindparam, delete, select

from blobstore import BlobInfo, BlobNotFound, BlobStore, BlobURLs, Digest, LocalBlobPaths
from registry.db import Database, WriteConnection
from registry.db.models import blobs, repositories, repository_blobs
from registry.errcode import BLOB_UNKNOWN, UNSUPPORTED, RegistryError
from registry.quota import Quotas
from registry.service.pins import LIVE, link_existing_blob
from registry.service.repos import ensure_repository, repository_id
from registry.webhooks import Outbox

# A blob's size as linked in a repository: recorded when its bytes were published, and
# its row is live (a collection deleting the bytes marks it first, once nothing links it).
_LINKED_SIZE = (
    select(blobs.c.size)
    .select_from(
        repository_blobs.join(
            repositories, repositories.c.id == repository_blobs.c.repository_id
        ).join(blobs, blobs.c.digest == repository_blobs.c.digest)
    )
    .where(
        repositories.c.name == bindparam("repo"),
        repository_blobs.c.digest == bindparam("digest"),
        blobs.c.state == LIVE,
    )
)


class BlobService:
    def __init__(
        self,
        db: Database,
        store: BlobStore,
        *,
        delete_enabled: bool,
        redirect: bool = True,
        quotas: Quotas | None = None,
        events: Outbox | None = None,
    ) -> None:
        self._db = db
        self._engine = db.engine
        self._store = store
        self._delete_enabled = delete_enabled
        self._quotas = quotas or Quotas()
        self._redirect = redirect
        self._events = events or Outbox()

    async def stat(self, repo: str, digest: Digest) -> BlobInfo:
        """The blob as linked in `repo`; BLOB_UNKNOWN if it is not linked or its bytes are gone."""
        await self.linked(repo, digest)
        try:
            return await self._store.stat(digest)  # the size, and proof the bytes are there
        except BlobNotFound:
            raise RegistryError(BLOB_UNKNOWN, detail={"digest": str(digest)}) from None

    async def linked(self, repo: str, digest: Digest) -> BlobInfo:
        """The blob as linked in `repo`, from the database alone (a HEAD: the bytes are not
        read, and asking an S3 store would take a round trip); BLOB_UNKNOWN if not linked."""
        async with self._db.read() as conn:
            result = await conn.execute(_LINKED_SIZE, {"repo": repo, "digest": str(digest)})
            size = result.scalar_one_or_none()
        if size is None:
            raise RegistryError(BLOB_UNKNOWN, detail={"digest": str(digest)})
        return BlobInfo(digest, int(size))

    async def pulled(self, repo: str, info: BlobInfo) -> None:
        """A GET of the blob's bytes began (a pull event, for endpoints that want them)."""
        self._events.blob_pulled(repo, str(info.digest), info.size)

    def local_path(self, digest: Digest) -> Path | None:
        """The blob's file when the store is local (so the server can use sendfile)."""
        if isinstance(self._store, LocalBlobPaths):
            return self._store.blob_path(digest)
        return None

    async def redirect_url(self, digest: Digest) -> str | None:
        """Where to send a client for the blob's bytes (S3's presigned URL), unless
        redirects are disabled (storage.redirect.disable) or the store has no URLs."""
        if self._redirect and isinstance(self._store, BlobURLs):
            return await self._store.url_for(digest)
        return None

    def read(self, digest: Digest, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        return self._store.read(digest, start, end)

    async def delete(self, repo: str, digest: Digest) -> None:
        """Unlink the blob from `repo`. The bytes stay in the store for garbage collection."""
        if not self._delete_enabled:
            raise RegistryError(UNSUPPORTED, detail="deletion is disabled (storage.delete.enabled)")

        async def work(conn: WriteConnection) -> int:
            repo_id = await repository_id(conn, repo)
            if repo_id is None:
                return 0
            result = await conn.execute(
                delete(repository_blobs).where(
                    repository_blobs.c.repository_id == repo_id,
                    repository_blobs.c.digest == str(digest),
                )
            )
            if result.rowcount:
                await self._events.blob_deleted(conn, repo, str(digest))
            return result.rowcount

        if await self._db.transact(work) == 0:
            raise RegistryError(BLOB_UNKNOWN, detail={"digest": str(digest)})

    async def mount(
        self, repo: str, digest: Digest, source: str | None, may_read: Callable[[str], bool]
    ) -> BlobInfo | None:
        """Link a blob another repository has into `repo`. With `source` None, any repository
        the caller may read will do. None when nothing can be mounted."""
        async with self._db.read() as conn:
            query = (
                select(repositories.c.name, blobs.c.size)
                .select_from(
                    repository_blobs.join(
                        repositories, repositories.c.id == repository_blobs.c.repository_id
                    ).join(blobs, blobs.c.digest == repository_blobs.c.digest)
                )
                .where(repository_blobs.c.digest == str(digest))
            )
            if source is not None:
                query = query.where(repositories.c.name == source)
            rows = (await conn.execute(query.limit(100))).all()
        readable = [row for row in rows if row.name == repo or may_read(row.name)]
        if not readable:
            return None
        try:
            info = await self._store.stat(digest)
        except BlobNotFound:
            return None

        async def work(conn: WriteConnection) -> bool:
            linked = await link_existing_blob(conn, await ensure_repository(conn, repo), digest)
            if linked:
                await self._quotas.enforce(conn, repo)
                await self._events.blob_mounted(
                    conn, repo, str(digest), info.size, readable[0].name
                )
            return linked

        return info if await self._db.transact(work) else None
