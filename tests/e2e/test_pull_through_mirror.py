"""Berth as a registry mirror, the way dockerd uses one: `registry-mirrors` in daemon.json.

A second dockerd, started here with its own data root, exec root, pidfile and socket, has
`--registry-mirror` pointing at a Berth whose `proxy.remoteurl` is a Distribution holding
`library/busybox` (the stand-in for Docker Hub, which this machine cannot reach). Its
`docker pull busybox` goes to the mirror: dockerd sends Docker Hub names to mirrors as
`library/busybox`. Without the mirror the pull could only fail (no internet).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from tests.e2e.conftest import assert_no_traceback
from tests.support.clients import ALL_MANIFEST_TYPES
from tests.support.dockerd import Dockerd, running_dockerd
from tests.support.server import RunningServer
from tests.support.upstreams import Upstream, marker_image, start_dist_upstream, start_proxy_berth

pytestmark = pytest.mark.e2e


@dataclass
class Mirror:
    upstream: Upstream
    berth: RunningServer
    marker: str
    digest: str


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mirror]:
    base = tmp_path_factory.mktemp("mirror")
    upstream = start_dist_upstream(base / "hub")
    berth = None
    try:
        marker = f"mirrored busybox {uuid.uuid4().hex}"
        digest = upstream.seed("library/busybox", "latest", marker_image(marker))
        berth = start_proxy_berth(base / "berth", {"remoteurl": upstream.url, "ttl": "5m"})
        yield Mirror(upstream, berth, marker, digest)
    finally:
        if berth is not None:
            berth.stop()
        upstream.server.stop()
    assert_no_traceback(berth)


@pytest.fixture(scope="module")
def mirrored_dockerd(mirror: Mirror) -> Iterator[Dockerd]:
    with running_dockerd(mirrors=[mirror.berth.url], insecure=[mirror.berth.host]) as daemon:
        yield daemon


def test_dockerd_pulls_a_short_name_through_the_mirror(
    mirror: Mirror, mirrored_dockerd: Dockerd
) -> None:
    pulled = mirrored_dockerd.docker("pull", "busybox")
    assert mirror.digest in pulled.stdout
    ran = mirrored_dockerd.docker("run", "--rm", "--network", "none", "busybox")
    assert ran.stdout == mirror.marker
    # It came through Berth: Berth now holds it, and Hub's stand-in served each blob once.
    cached = requests.head(
        f"{mirror.berth.url}/v2/library/busybox/manifests/{mirror.digest}",
        headers={"Accept": ALL_MANIFEST_TYPES},
        timeout=30,
    )
    assert cached.status_code == 200
    fetched = mirror.upstream.blob_fetches()
    assert len(fetched) == 3, fetched  # config, busybox layer, marker layer
    assert set(fetched.values()) == {1}, fetched

    # A second daemon-side pull (image removed) is served by the mirror's cache.
    mirrored_dockerd.docker("rmi", "busybox")
    mirrored_dockerd.docker("pull", "busybox")
    assert mirror.upstream.blob_fetches() == fetched


def test_mirror_refuses_pushes(mirror: Mirror) -> None:
    got = requests.post(f"{mirror.berth.url}/v2/library/busybox/blobs/uploads/", timeout=30)
    assert got.status_code == 405, got.text
    assert got.json()["errors"][0]["code"] == "UNSUPPORTED"
