"""Berth as a registry mirror, the way dockerd uses one: `registry-mirrors` in daemon.json.

A second dockerd, started here with its own data root, exec root, pidfile and socket, has
`--registry-mirror` pointing at a Berth whose `proxy.remoteurl` is a Distribution holding
`library/busybox` (the stand-in for Docker Hub, which this machine cannot reach). Its
`docker pull busybox` goes to the mirror: dockerd sends Docker Hub names to mirrors as
`library/busybox`. Without the mirror the pull could only fail (no internet).

containerd (`hosts.toml`, through `ctr --hosts-dir`) and podman (`registries.conf`) are set up
as docs/pull-through-cache.md shows, for the whole-registry mirror and for a Berth prefix.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import Containerd, assert_no_traceback
from tests.support.clients import ALL_MANIFEST_TYPES, run, unmount_under
from tests.support.dockerd import Dockerd, running_dockerd
from tests.support.server import RunningServer
from tests.support.upstreams import Upstream, marker_image, start_dist_upstream, start_proxy_berth

pytestmark = pytest.mark.e2e
HUB_PREFIX = "hub"  # the same upstream under a prefix, for the clients that allow a path
TTL_SECONDS = 1


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
        berth = start_proxy_berth(
            base / "berth",
            {
                "remoteurl": upstream.url,
                "ttl": f"{TTL_SECONDS}s",
                "upstreams": [upstream.proxy_entry(HUB_PREFIX)],
            },
        )
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


@pytest.mark.parametrize("path", ["", f"/v2/{HUB_PREFIX}"], ids=["mirror", "prefix"])
def test_containerd_hosts_toml_pulls_through_berth(
    mirror: Mirror, containerd: Containerd, tmp_path: Path, path: str
) -> None:
    hosts = tmp_path / "certs.d"
    (hosts / "docker.io").mkdir(parents=True)
    override = "  override_path = true\n" if path else ""
    (hosts / "docker.io" / "hosts.toml").write_text(
        'server = "https://registry-1.docker.io"\n\n'
        f'[host."{mirror.berth.url}{path}"]\n'
        '  capabilities = ["pull", "resolve"]\n' + override
    )
    ref = "docker.io/library/busybox:latest"
    containerd.ctr("images", "pull", "--hosts-dir", str(hosts), ref)
    listed = containerd.ctr("images", "list", f"name=={ref}").stdout
    containerd.ctr("images", "rm", ref)
    assert mirror.digest in listed


@pytest.mark.parametrize("location", ["", f"/{HUB_PREFIX}"], ids=["mirror", "prefix"])
def test_podman_registries_conf_pulls_through_berth(
    mirror: Mirror, tmp_path: Path, location: str
) -> None:
    registries = tmp_path / "registries.conf"
    registries.write_text(
        'unqualified-search-registries = ["docker.io"]\n\n'
        '[[registry]]\nprefix = "docker.io"\nlocation = "registry-1.docker.io"\n\n'
        f'[[registry.mirror]]\nlocation = "{mirror.berth.host}{location}"\ninsecure = true\n'
    )
    state = Path(tempfile.mkdtemp(prefix="berth-podman-"))  # podman wants a short runroot
    podman = ["podman", "--root", str(state / "root"), "--runroot", str(state / "run")]
    env = {"CONTAINERS_REGISTRIES_CONF": str(registries)}
    try:
        run([*podman, "pull", "busybox"], env=env)
        digest = run(
            [*podman, "image", "inspect", "--format", "{{.Digest}}", "docker.io/library/busybox"],
            env=env,
        ).stdout.strip()
        assert digest == mirror.digest
    finally:
        run([*podman, "rmi", "-a", "-f"], env=env, check=False)
        unmount_under(state)
        shutil.rmtree(state, ignore_errors=True)


def test_mirror_serves_cached_busybox_while_the_upstream_is_down(
    mirror: Mirror, mirrored_dockerd: Dockerd
) -> None:
    """Last in the module: it stops the upstream. (Not an uncached name here: dockerd would
    fall back to Docker Hub, a DNS lookup off this machine.)"""
    mirrored_dockerd.docker("pull", "busybox")
    mirrored_dockerd.docker("rmi", "busybox")
    mirror.upstream.server.stop()
    time.sleep(TTL_SECONDS + 0.5)  # the tag is due for revalidation, which fails

    mirrored_dockerd.docker("pull", "busybox")
    ran = mirrored_dockerd.docker("run", "--rm", "--network", "none", "busybox")
    assert ran.stdout == mirror.marker
    assert any(
        "WARNING" in line and "library/busybox" in line for line in mirror.berth.log().splitlines()
    ), mirror.berth.log()[-3000:]
