"""Pulls through a prefix and through a whole-registry mirror, from a real upstream Berth."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from registry import Config
from registry.config import EndpointConfig, NotificationsConfig
from tests.api.oci import OCI_MANIFEST, Client, digest_of, error_code, push_image
from tests.proxy.conftest import CacheFactory
from tests.proxy.forwarder import Forwarder
from tests.support.server import RunningServer
from tests.support.webhooks import Receiver


async def test_manifest_and_blobs_through_a_prefix(
    upstream: RunningServer, upstream_session: Client, make_cache: CacheFactory
) -> None:
    layer = b"layer through the cache " * 1000
    digest, payload = await push_image(upstream_session, "team/app", layer=layer)
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


async def test_pushes_and_deletes_under_a_prefix_are_unsupported(
    upstream: RunningServer, upstream_session: Client, make_cache: CacheFactory
) -> None:
    digest, _ = await push_image(upstream_session, "ro/app")
    cache = await make_cache(upstream.url)
    assert (await cache.get("/v2/up/ro/app/manifests/latest")).status == 200
    blob = "sha256:" + "1" * 64
    attempts = [
        cache.post("/v2/up/ro/app/blobs/uploads/"),
        cache.post(f"/v2/up/ro/app/blobs/uploads/?digest={digest_of(b'x')}", data=b"x"),
        cache.post("/v2/up/ro/app/blobs/uploads/?mount=" + blob + "&from=local/app"),
        cache.put("/v2/up/ro/app/manifests/v2", data=b"{}", headers={"Content-Type": OCI_MANIFEST}),
        cache.delete(f"/v2/up/ro/app/manifests/{digest}"),
        cache.delete("/v2/up/ro/app/manifests/latest"),
        cache.delete(f"/v2/up/ro/app/blobs/{blob}"),
    ]
    for attempt in attempts:
        response = await attempt
        assert response.status == 405, await response.text()
        assert await error_code(response) == "UNSUPPORTED"
    # What was cached is still served; names under no prefix are local and take pushes.
    assert (await cache.get(f"/v2/up/ro/app/manifests/{digest}")).status == 200
    local_digest, _ = await push_image(cache, "local/app")
    assert (await cache.get(f"/v2/local/app/manifests/{local_digest}")).status == 200


async def test_a_mirror_refuses_pushes_everywhere(
    upstream: RunningServer, upstream_session: Client, make_cache: CacheFactory
) -> None:
    _, payload = await push_image(upstream_session, "mirrored/app")
    cache = await make_cache(upstream.url, prefix=None)
    response = await cache.get("/v2/mirrored/app/manifests/latest")
    assert response.status == 200
    assert await response.read() == payload
    response = await cache.post("/v2/anything/blobs/uploads/")
    assert response.status == 405
    assert await error_code(response) == "UNSUPPORTED"


async def test_catalog_and_tag_lists_show_what_is_cached(
    upstream: RunningServer, upstream_session: Client, make_cache: CacheFactory
) -> None:
    await push_image(upstream_session, "listed/app", reference="v1")
    await push_image(upstream_session, "listed/app", reference="v2")
    await push_image(upstream_session, "listed/other", reference="v1")
    cache = await make_cache(upstream.url)
    assert (await (await cache.get("/v2/_catalog")).json())["repositories"] == []
    assert (await cache.get("/v2/up/listed/app/manifests/v1")).status == 200

    catalog = await (await cache.get("/v2/_catalog")).json()
    assert catalog["repositories"] == ["up/listed/app"]
    tags = await (await cache.get("/v2/up/listed/app/tags/list")).json()
    assert tags == {"name": "up/listed/app", "tags": ["v1"]}
    assert (await cache.get("/v2/up/listed/other/tags/list")).status == 404


async def test_head_of_an_uncached_blob_asks_upstream_and_fetches_nothing(
    upstream_session: Client, forwarder: tuple[Forwarder, str], make_cache: CacheFactory
) -> None:
    counter, url = forwarder
    layer = b"a layer asked about " * 500
    await push_image(upstream_session, "headed/app", layer=layer)
    cache = await make_cache(url)
    blob = f"/v2/up/headed/app/blobs/{digest_of(layer)}"

    head = await cache.head(blob)
    assert head.status == 200
    assert head.headers["Content-Length"] == str(len(layer))
    assert head.headers["Docker-Content-Digest"] == digest_of(layer)
    assert counter.count("GET", "blobs") == 0

    # A ranged GET of an uncached blob: the whole blob is cached, then the range served.
    ranged = await cache.get(blob, headers={"Range": "bytes=5-14"})
    assert ranged.status == 206
    assert await ranged.read() == layer[5:15]
    assert (await cache.get(blob)).status == 200
    assert counter.count("GET", "blobs") == 1


async def test_pulls_through_the_cache_are_pull_events(
    upstream: RunningServer,
    upstream_session: Client,
    make_cache: CacheFactory,
    base_config: Config,
) -> None:
    """A pull that fetches from the upstream is a pull like any other (webhook `pull` events
    for the manifest and each blob), the first time as well as from the cache; a repeat
    within a minute is one event, as for any pull (registry.webhooks.pull_events)."""
    layer = b"an evented layer"
    digest, payload = await push_image(upstream_session, "evented/app", layer=layer)
    receiver = Receiver()
    receiver.start()
    try:
        endpoint = EndpointConfig(name="all", url=receiver.url)
        config = dataclasses.replace(
            base_config, notifications=NotificationsConfig(endpoints=(endpoint,))
        )
        cache = await make_cache(upstream.url, config=config)
        assert (await cache.get("/v2/up/evented/app/manifests/latest")).status == 200
        blobs = [
            d["digest"] for d in (json.loads(payload)["config"], *json.loads(payload)["layers"])
        ]
        for _ in range(2):  # uncached, then cached
            for blob in blobs:
                response = await cache.get(f"/v2/up/evented/app/blobs/{blob}")
                assert response.status == 200
                await response.read()
        # From the cache, by another reference: a new event
        assert (await cache.get(f"/v2/up/evented/app/manifests/{digest}")).status == 200

        def pulled(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
            return [
                (e["target"]["repository"], e["target"]["digest"])
                for e in events
                if e["action"] == "pull"
            ]

        events = await receiver.await_events(lambda evs: len(pulled(evs)) >= 5, polls=200)
    finally:
        receiver.stop()
    assert sorted(pulled(events)) == sorted(
        [("up/evented/app", digest)] * 2 + [("up/evented/app", blob) for blob in blobs]
    )
