"""The upstream goes away: what the cache already holds still pulls, the rest fails clearly.

One Distribution upstream of this module's own (it is stopped mid-module) and a Berth whose
`dist` prefix fetches from it with a 1 s TTL, so the cached tag's next pull revalidates
upstream, finds it down and serves the cached manifest (saying so in a WARNING log line).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from tests.e2e.conftest import DockerImages, assert_no_traceback
from tests.support.clients import ALL_MANIFEST_TYPES, run
from tests.support.images import Image
from tests.support.server import RunningServer
from tests.support.upstreams import Upstream, marker_image, start_dist_upstream, start_proxy_berth

pytestmark = pytest.mark.e2e
TTL_SECONDS = 1


@dataclass
class Outage:
    upstream: Upstream
    proxy: RunningServer
    repository: str
    cached_marker: str
    uncached: Image


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outage]:
    base = tmp_path_factory.mktemp("outage")
    upstream = start_dist_upstream(base / "upstream")
    proxy = None
    try:
        proxy = start_proxy_berth(
            base / "proxy",
            {"upstreams": [upstream.proxy_entry("dist", ttl=f"{TTL_SECONDS}s")]},
        )
        repository = f"pt/outage-{uuid.uuid4().hex[:8]}"
        cached_marker = f"cached {uuid.uuid4().hex}"
        uncached = marker_image(f"uncached {uuid.uuid4().hex}")
        upstream.seed(repository, "cached", marker_image(cached_marker))
        upstream.seed(repository, "uncached", uncached)
        yield Outage(upstream, proxy, repository, cached_marker, uncached)
    finally:
        if proxy is not None:
            proxy.stop()
        upstream.server.stop()
    assert_no_traceback(proxy)


def _ref(outage: Outage, tag: str) -> str:
    return f"{outage.proxy.host}/dist/{outage.repository}:{tag}"


def test_cached_tag_pulls_and_uncached_fails_while_upstream_is_down(
    outage: Outage, docker_images: DockerImages
) -> None:
    cached = docker_images.pulled(_ref(outage, "cached"))
    run(["docker", "pull", cached])
    docker_images.remove(cached)

    outage.upstream.server.stop()
    time.sleep(TTL_SECONDS + 0.5)  # the cached tag is due for revalidation

    run(["docker", "pull", cached])
    ran = run(["docker", "run", "--rm", "--network", "none", cached]).stdout
    assert ran == outage.cached_marker
    warnings = [
        line
        for line in outage.proxy.log().splitlines()
        if "WARNING" in line and outage.repository in line
    ]
    assert warnings, "no WARNING says a stale manifest was served:\n" + outage.proxy.log()[-3000:]

    uncached = docker_images.pulled(_ref(outage, "uncached"))
    failed = run(["docker", "pull", uncached], check=False)
    assert failed.returncode != 0
    # dockerd (like skopeo and podman) prints an error's message for 4xx answers only; so the
    # answer is a 404 whose message says what the user needs to know.
    unavailable = f"upstream registry {outage.upstream.url} is unavailable and nothing is cached"
    assert unavailable in failed.stderr, failed.stderr


def test_uncached_manifest_and_blob_errors_name_the_upstream(outage: Outage) -> None:
    if outage.upstream.server.process.poll() is None:  # runs after the test above, or alone
        outage.upstream.server.stop()
    manifest = requests.get(
        f"{outage.proxy.url}/v2/dist/{outage.repository}/manifests/uncached",
        headers={"Accept": ALL_MANIFEST_TYPES},
        timeout=30,
    )
    assert manifest.status_code == 404, manifest.text
    error = manifest.json()["errors"][0]
    assert error["code"] == "MANIFEST_UNKNOWN", error
    assert outage.upstream.url in error["message"], error

    layer = outage.uncached.layers[1].digest
    blob = requests.get(f"{outage.proxy.url}/v2/dist/{outage.repository}/blobs/{layer}", timeout=30)
    assert blob.status_code == 404, blob.text
    error = blob.json()["errors"][0]
    assert error["code"] == "BLOB_UNKNOWN", error
    assert outage.upstream.url in error["message"], error
