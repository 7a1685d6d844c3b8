"""Tags revalidated upstream after their ttl, and served stale when the upstream fails."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import aiohttp
import pytest

from tests.api.oci import Client, error_code, push_image
from tests.proxy.conftest import CacheFactory
from tests.proxy.forwarder import Forwarder
from tests.support.server import start_berth


async def test_a_moved_tag_is_picked_up_after_the_ttl_not_before(
    upstream_session: Client,
    forwarder: tuple[Forwarder, str],
    make_cache: CacheFactory,
) -> None:
    counter, url = forwarder
    first, _ = await push_image(upstream_session, "moving/app", layer=b"one")
    cache = await make_cache(url, ttl=1.0)
    response = await cache.get("/v2/up/moving/app/manifests/latest")
    assert response.headers["Docker-Content-Digest"] == first

    second, _ = await push_image(upstream_session, "moving/app", layer=b"two")
    asked = counter.count("GET", "manifests") + counter.count("HEAD", "manifests")
    response = await cache.get("/v2/up/moving/app/manifests/latest")
    assert response.headers["Docker-Content-Digest"] == first  # within the ttl: not asked
    assert counter.count("GET", "manifests") + counter.count("HEAD", "manifests") == asked

    await asyncio.sleep(1.1)
    response = await cache.get("/v2/up/moving/app/manifests/latest")
    assert response.headers["Docker-Content-Digest"] == second
    assert counter.count("HEAD", "manifests") == 1  # one revalidation, then the new manifest
    # Both stay cached by digest.
    assert (await cache.get(f"/v2/up/moving/app/manifests/{first}")).status == 200


async def test_an_unchanged_tag_costs_one_head_per_ttl(
    upstream_session: Client,
    forwarder: tuple[Forwarder, str],
    make_cache: CacheFactory,
) -> None:
    counter, url = forwarder
    digest, _ = await push_image(upstream_session, "steady/app")
    cache = await make_cache(url, ttl=0.0)
    for _ in range(3):
        response = await cache.get("/v2/up/steady/app/manifests/latest")
        assert response.headers["Docker-Content-Digest"] == digest
    assert counter.count("GET", "manifests") == 1
    assert counter.count("HEAD", "manifests") == 2


async def test_stale_on_error(
    tmp_path: Path, make_cache: CacheFactory, caplog: pytest.LogCaptureFixture
) -> None:
    upstream = start_berth(tmp_path / "upstream-data")
    try:
        async with aiohttp.ClientSession(base_url=upstream.url) as session:
            digest, payload = await push_image(session, "stale/app")  # type: ignore[arg-type]
            await push_image(session, "stale/app", reference="uncached", layer=b"other")  # type: ignore[arg-type]
        cache = await make_cache(upstream.url, ttl=0.0)
        assert (await cache.get("/v2/up/stale/app/manifests/latest")).status == 200
        layer = json.loads(payload)["layers"][0]["digest"]
        assert (await cache.get(f"/v2/up/stale/app/blobs/{layer}")).status == 200
    finally:
        upstream.stop()

    with caplog.at_level(logging.WARNING, logger="registry.proxy"):
        response = await cache.get("/v2/up/stale/app/manifests/latest")
    assert response.status == 200
    assert await response.read() == payload
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        upstream.url in line and "up/stale/app:latest" in line and "stale" in line
        for line in warnings
    ), warnings
    assert (await cache.get(f"/v2/up/stale/app/manifests/{digest}")).status == 200
    assert (await cache.get(f"/v2/up/stale/app/blobs/{layer}")).status == 200

    # Uncached: unknown, with a message (what clients show) naming the upstream.
    response = await cache.get("/v2/up/stale/app/manifests/uncached")
    assert response.status == 404
    assert await error_code(response) == "MANIFEST_UNKNOWN"
    message = (await response.json())["errors"][0]["message"]
    assert message == f"upstream registry {upstream.url} is unavailable and nothing is cached"
    response = await cache.get("/v2/up/stale/app/blobs/sha256:" + "2" * 64)
    assert response.status == 404
    assert await error_code(response) == "BLOB_UNKNOWN"
    assert upstream.url in (await response.json())["errors"][0]["message"]


async def test_an_upstream_answering_5xx_is_stale_on_error_and_404_is_not(
    upstream_session: Client,
    forwarder: tuple[Forwarder, str],
    make_cache: CacheFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    counter, url = forwarder
    digest, _ = await push_image(upstream_session, "flaky/app")
    cache = await make_cache(url, ttl=0.0)
    assert (await cache.get("/v2/up/flaky/app/manifests/latest")).status == 200

    counter.fail_with = 503
    with caplog.at_level(logging.WARNING, logger="registry.proxy"):
        response = await cache.get("/v2/up/flaky/app/manifests/latest")
    assert response.status == 200
    assert response.headers["Docker-Content-Digest"] == digest
    assert any("up/flaky/app:latest" in r.getMessage() for r in caplog.records)

    counter.fail_with = 404  # the tag is gone upstream: not served from the cache
    response = await cache.get("/v2/up/flaky/app/manifests/latest")
    assert response.status == 404
    assert await error_code(response) == "MANIFEST_UNKNOWN"
    counter.fail_with = None
    assert (await cache.get("/v2/up/flaky/app/manifests/latest")).status == 200
