"""Blobs through the cache: fetched from the upstream once, streamed to every client that asks
meanwhile, verified against their digest before they are committed.

A download runs in a task of its own (through `SingleFlight`, so once across processes): it
writes to a blobstore ingest and hands each chunk to the listeners in this process. The last
chunk is held back until the ingest's commit has verified the digest and size, so on a
mismatch no listener gets the last byte, its response is cut short, and nothing is committed;
and until the blob is linked in the repository, so a client that has the whole blob finds it
cached (and garbage collection sees the link) whatever it does next.
A listener that falls behind by more than `LISTENER_BACKLOG` bytes is dropped from the live
stream and reads the rest from the store once the blob is committed; so is one that joins
after the first chunk went out, and one whose download runs in another process. A client
that goes away only stops listening: the download goes on for the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator
from typing import Final

from sqlalchemy import select

from blobstore import BlobInfo, BlobNotFound, BlobStore, Digest, DigestMismatch, SizeMismatch
from registry.db import Database, WriteConnection
from registry.db.models import manifest_references, manifests, repositories
from registry.errcode import BLOB_UNKNOWN, UPSTREAM_UNAVAILABLE, RegistryError
from registry.proxy.single_flight import SingleFlight
from registry.proxy.upstream_errors import UPSTREAM_FAILURES, blob_error
from registry.proxy.upstreams import Route
from registry.service import BlobService
from registry.service.pins import link_blob, pin_blob, unpin_blob
from registry.service.repos import ensure_repository
from registry_client.transfer import resumable_blob

log = logging.getLogger(__name__)

LISTENER_BACKLOG: Final = 16 << 20  # bytes queued for one slow client before it reads the store
EARLY_HEADERS_AFTER: Final = 1.0  # seconds a client waits on another process before headers
WRITE_QUEUE: Final = 8  # chunks read from the upstream and not yet written to the ingest


class BlobFetch:
    """One download of a blob in this process, and what its listeners have been sent."""

    def __init__(self, digest: Digest) -> None:
        self.digest = digest
        self.size: int | None = None
        self.sized = asyncio.Event()  # size known, or the fetch ended
        self.published = 0
        self.linked = False  # downloaded here and linked into the repository that asked
        self.done: asyncio.Future[BlobInfo] = asyncio.get_running_loop().create_future()
        self._listeners: set[Listener] = set()

    def set_size(self, size: int) -> None:
        self.size = size
        self.sized.set()

    def publish(self, chunk: bytes) -> None:
        self.published += len(chunk)
        for listener in self._listeners:
            listener.offer(chunk)

    def finish(self, task: asyncio.Task[BlobInfo]) -> None:
        if task.cancelled():
            self.done.set_exception(RegistryError(UPSTREAM_UNAVAILABLE, detail="shutting down"))
        elif (error := task.exception()) is not None:
            self.done.set_exception(error)
        else:
            info = task.result()
            if self.size is None:
                self.size = info.size
            self.done.set_result(info)
        # Retrieved here, so that a failure no listener waits for is not logged as lost.
        self.done.exception()
        self.sized.set()
        for listener in self._listeners:
            listener.wake.set()

    def listen(self, store: BlobStore) -> Listener:
        """A listener: live chunks if nothing went out yet, else the store after the commit."""
        listener = Listener(self, store, live=self.published == 0 and not self.done.done())
        if listener.live:
            self._listeners.add(listener)
        return listener

    def forget(self, listener: Listener) -> None:
        self._listeners.discard(listener)


class Listener:
    def __init__(self, fetch: BlobFetch, store: BlobStore, *, live: bool) -> None:
        self._fetch = fetch
        self._store = store
        self.live = live
        self._chunks: deque[bytes] = deque()
        self._queued = 0
        self.wake = asyncio.Event()

    def offer(self, chunk: bytes) -> None:
        if not self.live:
            return
        if self._queued + len(chunk) > LISTENER_BACKLOG:
            self.live = False  # too slow: it reads the rest from the store after the commit
        else:
            self._chunks.append(chunk)
            self._queued += len(chunk)
        self.wake.set()

    async def size(self) -> int:
        """The blob's size, once the upstream told it (or the fetch ended)."""
        await self._fetch.sized.wait()
        if self._fetch.size is None:
            await self._fetch.done  # raises what the fetch failed with
        assert self._fetch.size is not None
        return self._fetch.size

    async def committed(self) -> BlobInfo:
        return await asyncio.shield(self._fetch.done)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The whole blob: live while it keeps up, then from the store."""
        sent = 0
        while True:
            while self._chunks:
                chunk = self._chunks.popleft()
                self._queued -= len(chunk)
                sent += len(chunk)
                yield chunk
            if not self.live or self._fetch.done.done():
                break
            self.wake.clear()
            await self.wake.wait()
        info = await self.committed()
        if sent < info.size:
            async for chunk in self._store.read(info.digest, sent):
                yield chunk

    def close(self) -> None:
        self._fetch.forget(self)


class CachedBlobs:
    def __init__(
        self,
        db: Database,
        store: BlobStore,
        blobs: BlobService,
        flights: SingleFlight[BlobInfo],
    ) -> None:
        self._db = db
        self._store = store
        self._blobs = blobs
        self._flights = flights
        self._fetches: dict[str, BlobFetch] = {}
        self._tasks: set[asyncio.Task[BlobInfo]] = set()

    async def find(self, route: Route, digest: Digest) -> BlobInfo | None:
        """The blob if it is cached for `route`'s repository (linking it there when its bytes
        are here already and the repository may have it); None when it must be fetched."""
        with contextlib.suppress(RegistryError):
            return await self._blobs.stat(route.name, digest)
        try:
            info = await self._store.stat(digest)
        except BlobNotFound:
            return None
        await self._link_if_upstream_has(route, info)
        return info

    async def upstream_size(self, route: Route, digest: Digest) -> int:
        """A HEAD of an uncached blob: asked upstream, nothing fetched."""
        try:
            return await route.upstream.client.head_blob(route.remote, digest)
        except UPSTREAM_FAILURES as exc:
            raise blob_error(exc, route, str(digest)) from None

    def fetch(self, route: Route, digest: Digest) -> Listener:
        """Listen to the download of `digest` into `route`'s repository, starting it unless
        one runs already in this process."""
        key = f"{route.name}@{digest}"
        fetch = self._fetches.get(key)
        if fetch is None:
            fetch = self._fetches[key] = BlobFetch(digest)
            task = asyncio.create_task(
                self._fetch_and_link(route, digest, fetch), name=f"proxy fetch {key}"
            )
            self._tasks.add(task)

            def finished(task: asyncio.Task[BlobInfo]) -> None:
                self._tasks.discard(task)
                if self._fetches.get(key) is fetch:
                    del self._fetches[key]
                fetch.finish(task)

            task.add_done_callback(finished)
        return fetch.listen(self._store)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=10)

    async def _fetch_and_link(self, route: Route, digest: Digest, fetch: BlobFetch) -> BlobInfo:
        # One download per digest (whichever repository asked first); linked into each.
        early = asyncio.create_task(self._size_meanwhile(route, digest, fetch))
        try:
            info = await self._flights.run(
                f"proxy-blob:{digest}",
                lambda: self._download(route, digest, fetch),
                lambda: self._committed(digest),
            )
        finally:
            early.cancel()
        if not fetch.linked:  # another process or repository downloaded it
            await self._link_if_upstream_has(route, info)
        return info

    async def _size_meanwhile(self, route: Route, digest: Digest, fetch: BlobFetch) -> None:
        """While another process downloads, learn the size upstream (a HEAD), so that the
        clients waiting here get their headers and do not time out."""
        await asyncio.sleep(EARLY_HEADERS_AFTER)
        if fetch.size is None:
            with contextlib.suppress(*UPSTREAM_FAILURES):
                size = await route.upstream.client.head_blob(route.remote, digest)
                if fetch.size is None:
                    fetch.set_size(size)

    async def _download(self, route: Route, digest: Digest, fetch: BlobFetch) -> BlobInfo:
        client = route.upstream.client
        try:
            size = await client.head_blob(route.remote, digest)
        except UPSTREAM_FAILURES as exc:
            raise blob_error(exc, route, str(digest)) from None
        fetch.set_size(size)
        upload = await self._store.begin()
        pinned = False
        # The network and the disk work at once: the reader hands chunks to the listeners as
        # they arrive and queues them for the ingest, which hashes as it writes (off the
        # event loop); the commit checks digest and size, and only then does the last chunk,
        # held back by the reader, reach the listeners.
        queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(WRITE_QUEUE)
        last: list[bytes] = []
        reader = asyncio.create_task(self._read(route, digest, size, fetch, queue, last))
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                await upload.write(item)
            await pin_blob(self._db, digest, size, upload.id)
            pinned = True
            info = await upload.commit(digest, size)

            async def work(conn: WriteConnection) -> None:
                await link_blob(conn, await ensure_repository(conn, route.name), info)
                await unpin_blob(conn, digest, upload.id)

            try:
                await self._db.transact(work)
                pinned = False
                fetch.linked = True
            finally:  # the bytes are right and stored: the listeners get them, linked or not
                for chunk in last:
                    fetch.publish(chunk)
            log.info("cached blob %s (%d bytes) from %s", digest, size, route.upstream.url)
            return info
        except (DigestMismatch, SizeMismatch) as exc:
            log.error(
                "upstream %s sent other bytes for %s@%s (%s): nothing cached",
                route.upstream.url,
                route.remote,
                digest,
                exc,
            )
            raise RegistryError(
                BLOB_UNKNOWN,
                message=f"upstream registry {route.upstream.url} sent bytes that are not {digest}",
                detail={"upstream": route.upstream.url, "reason": str(exc)},
            ) from None
        except UPSTREAM_FAILURES as exc:
            raise blob_error(exc, route, str(digest)) from None
        finally:
            reader.cancel()
            await asyncio.wait([reader])
            await upload.abort()  # a no-op after the commit
            if pinned:
                with contextlib.suppress(Exception):
                    await self._db.transact(lambda conn: unpin_blob(conn, digest, upload.id))

    @staticmethod
    async def _read(
        route: Route,
        digest: Digest,
        size: int,
        fetch: BlobFetch,
        queue: asyncio.Queue[bytes | BaseException | None],
        last: list[bytes],
    ) -> None:
        """Upstream bytes into `queue` (then None, or the error), and to the listeners all
        but the last chunk, which is left in `last`."""
        received = 0
        held: bytes | None = None
        try:
            source = resumable_blob(
                route.upstream.client, route.remote, digest, size, lambda: received
            )
            async with contextlib.aclosing(source):
                async for chunk in source:
                    received += len(chunk)
                    if received > size:
                        raise SizeMismatch(size, received)
                    if held is not None:
                        fetch.publish(held)
                    held = chunk
                    await queue.put(chunk)
            if held is not None:
                last.append(held)
            await queue.put(None)
        except Exception as exc:  # noqa: BLE001  (whatever it is, the writer raises it)
            await queue.put(exc)

    async def _committed(self, digest: Digest) -> BlobInfo | None:
        """The blob, once another process committed it."""
        try:
            return await self._store.stat(digest)
        except BlobNotFound:
            return None

    async def _link_if_upstream_has(self, route: Route, info: BlobInfo) -> None:
        """Link a blob whose bytes are here into `route`'s repository, if that repository may
        have it: a manifest cached there references it, or its upstream repository has it
        (else a name under one upstream would serve what only another upstream has)."""
        if not await self._referenced_in(route.name, info.digest):
            try:
                await route.upstream.client.head_blob(route.remote, info.digest)
            except UPSTREAM_FAILURES as exc:
                raise blob_error(exc, route, str(info.digest)) from None
        await self._link(route.name, info)

    async def _link(self, repo: str, info: BlobInfo) -> None:
        async def work(conn: WriteConnection) -> None:
            await link_blob(conn, await ensure_repository(conn, repo), info)

        await self._db.transact(work)

    async def _referenced_in(self, repo: str, digest: Digest) -> bool:
        """Whether a manifest cached in `repo` references `digest`."""
        query = (
            select(manifest_references.c.digest)
            .join(manifests, manifests.c.id == manifest_references.c.manifest_id)
            .join(repositories, repositories.c.id == manifests.c.repository_id)
            .where(repositories.c.name == repo, manifest_references.c.digest == str(digest))
            .limit(1)
        )
        async with self._db.read() as conn:
            return (await conn.execute(query)).first() is not None
