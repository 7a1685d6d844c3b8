"""The pull-through cache (issue 13, docs/pull-through-cache.md): repositories served from
upstream registries, fetched once and kept.

    upstreams          which upstream a name comes from (`proxy.upstreams`, `proxy.remoteurl`)
    cached_manifests   manifests by digest kept; by tag revalidated after the ttl, stale on error
    blob_fetch         blobs streamed to clients while stored, verified before the commit
    single_flight      one fetch per thing across requests, workers and replicas (leases)
    tag_checks         when each cached tag was last checked upstream
    upstream_errors    the registry client's errors as OCI errors

Cached content is ordinary content: manifests, tags and blob links in the same tables, so the
catalog, tag lists, garbage collection and retention see it like anything pushed.
"""

from __future__ import annotations

from typing import Final

import aiohttp

from blobstore import BlobInfo, BlobStore
from registry.config import ProxyConfig
from registry.db import Database
from registry.holders import holder_name
from registry.leases import Leases
from registry.proxy.blob_fetch import CachedBlobs, Listener
from registry.proxy.cached_manifests import CachedManifests
from registry.proxy.single_flight import SingleFlight
from registry.proxy.upstreams import Route, Upstream, Upstreams
from registry.service import BlobService, ManifestService, StoredManifest

# Connecting gives up quickly (stale content is better than a hung pull); a slow body does not.
UPSTREAM_TIMEOUT: Final = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=120)


class PullThroughCache:
    def __init__(
        self,
        config: ProxyConfig,
        db: Database,
        store: BlobStore,
        manifests: ManifestService,
        blobs: BlobService,
    ) -> None:
        self._session = aiohttp.ClientSession(timeout=UPSTREAM_TIMEOUT)
        self.upstreams = Upstreams(config, self._session)
        # A holder of its own: two apps in one process (tests) are two replicas.
        leases = Leases(db, holder_name())
        self._manifest_flights: SingleFlight[StoredManifest] = SingleFlight(leases)
        self._blob_flights: SingleFlight[BlobInfo] = SingleFlight(leases)
        self.manifests = CachedManifests(db, manifests, self._manifest_flights)
        self.blobs = CachedBlobs(db, store, blobs, self._blob_flights)

    def route(self, name: str) -> Route | None:
        return self.upstreams.route(name)

    async def close(self) -> None:
        await self.blobs.stop()
        await self._blob_flights.stop()
        await self._manifest_flights.stop()
        await self._session.close()


__all__ = ["Listener", "PullThroughCache", "Route", "Upstream"]
