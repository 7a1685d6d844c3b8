"""Pulls through a prefix and through a whole-registry mirror, from a real upstream Berth."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from tests.api.oci import OCI_MANIFEST, digest_of, error_code, push_image
from tests.proxy.conftest import CacheFactory
from tests.support.server import RunningServer


async def test_manifest_and_blobs_through_a_prefix(
    upstream: RunningServer, upstream_session: aiohttp.ClientSession, make_cache: CacheFactory
) -> None:
    layer = b"layer through the cache " * 1000
    digest, payload = await push_image(upstream_session, "team/app", layer=layer)  # type: ignore[arg-type]
    cache = await make_cache(upstream.url)

    response = await cache.get("/v2/up/team/app/manifests/latest", headers={"Accept": OCI_MANIFEST})
    assert response.status == 200, await response.text()
    assert await response.read() == payload
    assert response.headers["Docker-Content-Digest"] == digest

    by_digest = await cache.get(f"/v2/up/team/app/manifests/{digest}")
    assert by_digest.status == 200
    assert await by_digest.read() == payload

    manifest: dict[str, Any] = json.loads(payload)
    for descriptor in (manifest["config"], *manifest["layers"]):
        blob = await cache.get(f"/v2/up/team/app/blobs/{descriptor['digest']}")
        assert blob.status == 200, await blob.text()
        body = await blob.read()
        assert digest_of(body) == descriptor["digest"]
        assert len(body) == descriptor["size"]
    # A second time from the cache, with the store's Range support.
    ranged = await cache.get(
        f"/v2/up/team/app/blobs/{digest_of(layer)}", headers={"Range": "bytes=0-9"}
    )
    assert ranged.status == 206
    assert await ranged.read() == layer[:10]


async def test_unknown_upstream_names_are_unknown(
    upstream: RunningServer, make_cache: CacheFactory
) -> None:
    cache = await make_cache(upstream.url)
    response = await cache.get("/v2/up/nothing/here/manifests/latest")
    assert response.status == 404
    assert await error_code(response) == "MANIFEST_UNKNOWN"
    missing = "sha256:" + "0" * 64
    response = await cache.get(f"/v2/up/nothing/here/blobs/{missing}")
    assert response.status == 404
    assert await error_code(response) == "BLOB_UNKNOWN"
