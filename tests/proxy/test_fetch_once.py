"""Each blob and manifest fetched from the upstream once, however many clients ask, on one
app or two (two replicas on one database and store); verified before it is committed."""

from __future__ import annotations

import asyncio
import io
import json
import os
from pathlib import Path

import aiohttp
import pytest

from blobstore import BlobNotFound, Digest
from registry.db import Database
from registry.http.keys import BLOBSTORE
from registry.leases import Leases
from tests.api.oci import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    Client,
    descriptor,
    digest_of,
    push_blob,
)
from tests.proxy.conftest import CacheFactory
from tests.proxy.forwarder import Forwarder
from tests.support.server import start_berth

CLIENTS = 8


async def _image(session: Client, repo: str, size: int) -> tuple[str, bytes]:
    """An image with a random layer of `size` bytes, pushed; (the layer's digest, its bytes)."""
    layer = os.urandom(size)
    layer_digest = digest_of(layer)
    response = await session.post(
        f"/v2/{repo}/blobs/uploads/?digest={layer_digest}", data=io.BytesIO(layer)
    )
    assert response.status == 201, await response.text()
    config = b'{"architecture":"amd64","os":"linux"}'
    await push_blob(session, repo, config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": [{"mediaType": OCI_LAYER, "digest": layer_digest, "size": len(layer)}],
    }
    response = await session.put(
        f"/v2/{repo}/manifests/latest",
        data=json.dumps(manifest).encode(),
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert response.status == 201, await response.text()
    return layer_digest, layer


async def test_concurrent_pulls_make_one_upstream_request(
    upstream_session: Client,
    forwarder: tuple[Forwarder, str],
    make_cache: CacheFactory,
) -> None:
    counter, url = forwarder
    layer_digest, layer = await _image(upstream_session, "once/app", 2 << 20)
    counter.chunk_delay = 0.005  # the download lasts long enough for every client to join
    cache = await make_cache(url)

    async def pull_manifest() -> int:
        return (await cache.get("/v2/up/once/app/manifests/latest")).status

    async def pull_layer() -> bytes:
        response = await cache.get(f"/v2/up/once/app/blobs/{layer_digest}")
        assert response.status == 200
        return await response.read()

    assert await asyncio.gather(*(pull_manifest() for _ in range(CLIENTS))) == [200] * CLIENTS
    bodies = await asyncio.gather(*(pull_layer() for _ in range(CLIENTS)))
    assert all(body == layer for body in bodies)
    assert counter.count("GET", "manifests") == 1
    assert counter.count("GET", "blobs") == 1


async def test_two_replicas_fetch_once(
    upstream_session: Client,
    forwarder: tuple[Forwarder, str],
    make_cache: CacheFactory,
) -> None:
    counter, url = forwarder
    layer_digest, layer = await _image(upstream_session, "replicas/app", 2 << 20)
    counter.chunk_delay = 0.005
    first, second = await make_cache(url), await make_cache(url)

    async def pull_layer(cache: Client) -> bytes:
        response = await cache.get(f"/v2/up/replicas/app/blobs/{layer_digest}")
        assert response.status == 200
        return await response.read()

    caches = [first, second] * (CLIENTS // 2)
    bodies = await asyncio.gather(*(pull_layer(cache) for cache in caches))
    assert all(body == layer for body in bodies)
    assert counter.count("GET", "blobs") == 1


async def test_a_client_going_away_does_not_abort_the_fetch(
    upstream_session: Client,
    forwarder: tuple[Forwarder, str],
    make_cache: CacheFactory,
) -> None:
    counter, url = forwarder
    layer_digest, layer = await _image(upstream_session, "leaving/app", 3 << 20)
    counter.chunk_delay = 0.01
    cache = await make_cache(url)

    leaving = await cache.get(f"/v2/up/leaving/app/blobs/{layer_digest}")
    assert leaving.status == 200
    assert len(await leaving.content.read(65536)) > 0
    leaving.close()  # mid-blob: the connection is gone

    staying = await cache.get(f"/v2/up/leaving/app/blobs/{layer_digest}")
    assert await staying.read() == layer
    store = cache.app[BLOBSTORE]
    assert (await store.stat(Digest.parse(layer_digest))).size == len(layer)
    assert counter.count("GET", "blobs") == 1


async def test_bytes_that_are_not_the_digest_are_cut_short_and_not_kept(
    upstream_session: Client,
    forwarder: tuple[Forwarder, str],
    make_cache: CacheFactory,
) -> None:
    counter, url = forwarder
    layer_digest, layer = await _image(upstream_session, "lying/app", 3 << 20)
    counter.corrupt_blobs = True
    cache = await make_cache(url)

    response = await cache.get(f"/v2/up/lying/app/blobs/{layer_digest}")
    assert response.status == 200  # headers went out before the bytes could be checked
    assert response.content_length == len(layer)
    received = bytearray()

    async def read_all() -> None:
        async for chunk in response.content.iter_any():
            received.extend(chunk)

    with pytest.raises(aiohttp.ClientPayloadError):
        await read_all()
    assert 0 < len(received) < len(layer)
    with pytest.raises(BlobNotFound):
        await cache.app[BLOBSTORE].stat(Digest.parse(layer_digest))

    counter.corrupt_blobs = False  # the upstream mends its ways: fetched again, and kept
    response = await cache.get(f"/v2/up/lying/app/blobs/{layer_digest}")
    body = await response.read()
    assert digest_of(body) == layer_digest
    assert counter.count("GET", "blobs") == 2


async def test_a_fetch_whose_holder_died_is_taken_over(
    upstream_session: Client,
    forwarder: tuple[Forwarder, str],
    make_cache: CacheFactory,
    db: Database,
) -> None:
    counter, url = forwarder
    layer_digest, layer = await _image(upstream_session, "orphan/app", 1 << 20)
    cache = await make_cache(url)
    # A replica took the fetch and died: its lease runs out, and this one takes over.
    dead = Leases(db, "dead-replica")
    assert await dead.acquire(f"proxy-blob:{layer_digest}", ttl=1.5) is not None

    response = await cache.get(f"/v2/up/orphan/app/blobs/{layer_digest}")
    assert response.status == 200
    assert await response.read() == layer
    assert counter.count("GET", "blobs") == 1


async def test_workers_of_berth_serve_fetch_once(
    tmp_path: Path,
    upstream_session: Client,
    forwarder: tuple[Forwarder, str],
) -> None:
    """`berth serve` with two worker processes: whichever workers the clients reach, one
    upstream request per blob."""
    counter, url = forwarder
    layer_digest, layer = await _image(upstream_session, "workers/app", 2 << 20)
    counter.chunk_delay = 0.005
    config = tmp_path / "cache.yml"
    config.write_text(f"proxy:\n  upstreams:\n    - {{prefix: up, remoteurl: '{url}'}}\n")
    cache = await asyncio.to_thread(
        start_berth, tmp_path / "cache-data", workers=2, extra_args=["--config", str(config)]
    )
    try:
        async with aiohttp.ClientSession(base_url=cache.url) as session:

            async def pull() -> bytes:
                # A connection each, so that the kernel spreads them over the workers.
                async with session.get(
                    f"/v2/up/workers/app/blobs/{layer_digest}", headers={"Connection": "close"}
                ) as response:
                    assert response.status == 200
                    return await response.read()

            bodies = await asyncio.gather(*(pull() for _ in range(CLIENTS)))
    finally:
        await asyncio.to_thread(cache.stop)
    assert all(body == layer for body in bodies)
    assert counter.count("GET", "blobs") == 1
