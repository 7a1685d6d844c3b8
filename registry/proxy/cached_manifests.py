"""Manifests through the cache: by digest fetched once and kept; by tag revalidated upstream
(a HEAD) once the upstream's ttl has passed, and served stale when the upstream fails."""

from __future__ import annotations

import logging
from datetime import timedelta

from blobstore import Digest
from registry.db import Database
from registry.db.models import utcnow
from registry.errcode import RegistryError
from registry.proxy.single_flight import SingleFlight
from registry.proxy.tag_checks import CachedTag, cached_tag, mark_checked
from registry.proxy.upstream_errors import UPSTREAM_FAILURES, is_unavailable, manifest_error
from registry.proxy.upstreams import Route
from registry.service import ManifestService, StoredManifest

log = logging.getLogger(__name__)


class CachedManifests:
    def __init__(
        self, db: Database, manifests: ManifestService, flights: SingleFlight[StoredManifest]
    ) -> None:
        self._db = db
        self._manifests = manifests
        self._flights = flights

    async def get(self, route: Route, reference: Digest | str) -> StoredManifest:
        if isinstance(reference, Digest):
            return await self._by_digest(route, reference)
        return await self._by_tag(route, reference)

    async def _by_digest(self, route: Route, digest: Digest) -> StoredManifest:
        found = await self._local(route.name, digest)
        if found is not None:
            return found

        async def fetch() -> StoredManifest:
            try:
                body, content_type = await route.upstream.client.get_manifest(
                    route.remote, str(digest)
                )
            except UPSTREAM_FAILURES as exc:
                raise manifest_error(exc, route, str(digest)) from None
            return await self._manifests.store_fetched(route.name, None, body, content_type, digest)

        key = f"proxy-manifest:{route.name}@{digest}"
        return await self._flights.run(key, fetch, lambda: self._local(route.name, digest))

    async def _by_tag(self, route: Route, tag: str) -> StoredManifest:
        cached = await cached_tag(self._db, route.name, tag)
        started = utcnow()
        ttl = timedelta(seconds=route.upstream.ttl)
        checked = cached.checked_at if cached is not None else None
        if cached is not None and checked is not None and started - checked < ttl:
            return cached.manifest

        async def checked_since_start() -> StoredManifest | None:
            now = await cached_tag(self._db, route.name, tag)
            if now is None or now.checked_at is None or now.checked_at < started:
                return None
            return now.manifest

        key = f"proxy-tag:{route.name}:{tag}"
        try:
            return await self._flights.run(
                key, lambda: self._revalidate(route, tag, cached), checked_since_start
            )
        except UPSTREAM_FAILURES as exc:
            if cached is None or not is_unavailable(exc):
                raise manifest_error(exc, route, tag) from None
            log.warning(
                "upstream %s failed (%s): serving cached %s:%s (%s) stale",
                route.upstream.url,
                exc,
                route.name,
                tag,
                cached.manifest.digest,
            )
            return cached.manifest

    async def _revalidate(self, route: Route, tag: str, cached: CachedTag | None) -> StoredManifest:
        """Ask the upstream what `tag` is now; fetch and keep it if it moved. Raises the
        registry client's errors for the caller to judge."""
        client = route.upstream.client
        if cached is not None:
            head = await client.head_manifest(route.remote, tag)
            if str(head.digest) == cached.manifest.digest:
                await mark_checked(self._db, route.name, tag, utcnow())
                return cached.manifest
            body, content_type = await client.get_manifest(route.remote, str(head.digest))
            digest = head.digest
        else:
            body, content_type = await client.get_manifest(route.remote, tag)
            digest = Digest.of(body)
        stored = await self._manifests.store_fetched(route.name, tag, body, content_type, digest)
        log.info("cached %s:%s (%s) from %s", route.name, tag, digest, route.upstream.url)
        # Checked as of now, after the fetch: waiters that began meanwhile see it as fresh.
        await mark_checked(self._db, route.name, tag, utcnow())
        return stored

    async def _local(self, repo: str, digest: Digest) -> StoredManifest | None:
        try:
            return await self._manifests.get(repo, digest)
        except RegistryError:
            return None
