"""The pull-through cache with real upstreams, started here: `docker pull` through each prefix
of one Berth (CNCF Distribution plain, Distribution with token auth, a second Berth with
htpasswd Basic auth, credentials given in the config or by a docker config.json); the second
pull comes from the cache; a tag moved upstream is seen once the ttl has passed; a cache behind
Berth's own auth pulls only for a client allowed to pull the cached name; pushes and
deletes under a prefix are refused;
8 concurrent pulls of an uncached image fetch each blob from the upstream once.

Images are built in Python (tests/support/upstreams.py: /bin/busybox plus a marker layer) and
seeded into the upstreams; `docker run` of the pulled image prints its marker.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
import requests

from tests.e2e.conftest import DockerImages, assert_no_traceback
from tests.support.clients import ALL_MANIFEST_TYPES, run
from tests.support.images import sha256
from tests.support.server import RunningServer
from tests.support.token_issuer import TokenIssuer
from tests.support.upstreams import (
    USERNAME,
    Upstream,
    assert_each_pull_complete_and_fetched_once,
    concurrent_pulls,
    marker_image,
    random_image,
    start_proxy_berth,
)

pytestmark = pytest.mark.e2e

PREFIXES = {
    "dist": "dist_upstream",
    "distauth": "dist_token_upstream",
    "berthup": "berth_upstream",
    "berthcfg": "berth_upstream",  # credentials from proxy.dockerconfig
}
FAST_TTL_SECONDS = 1
WRONG_PASSWORD = "not-the-upstream-password"


@pytest.fixture(scope="module")
def proxy(
    tmp_path_factory: pytest.TempPathFactory,
    dist_upstream: Upstream,
    dist_token_upstream: Upstream,
    berth_upstream: Upstream,
) -> Iterator[RunningServer]:
    base = tmp_path_factory.mktemp("proxy")
    # Credentials for `berthcfg` come from a docker config.json, as `docker login` writes it.
    basic = base64.b64encode(f"{berth_upstream.username}:{berth_upstream.password}".encode())
    docker_config = base / "docker-config.json"
    docker_config.write_text(json.dumps({"auths": {berth_upstream.host: {"auth": basic.decode()}}}))
    server = start_proxy_berth(
        base,
        {
            "ttl": "10m",
            "dockerconfig": str(docker_config),
            "upstreams": [
                dist_upstream.proxy_entry("dist"),
                dist_upstream.proxy_entry("distfast", ttl=f"{FAST_TTL_SECONDS}s"),
                dist_token_upstream.proxy_entry("distauth"),
                berth_upstream.proxy_entry("berthup"),
                {"prefix": "berthcfg", "remoteurl": berth_upstream.url},
                dist_token_upstream.proxy_entry("badauth", password=WRONG_PASSWORD),
            ],
        },
    )
    try:
        yield server
    finally:
        server.stop()
    assert_no_traceback(server)
    for secret in {berth_upstream.password, dist_token_upstream.password, WRONG_PASSWORD}:
        assert secret not in server.log()


def _repository() -> str:
    return f"pt/app-{uuid.uuid4().hex[:8]}"


def _pull_and_run(docker_images: DockerImages, ref: str) -> str:
    docker_images.pulled(ref)
    run(["docker", "pull", ref])
    return run(["docker", "run", "--rm", "--network", "none", ref]).stdout


@pytest.mark.parametrize("prefix", sorted(PREFIXES))
def test_docker_pull_through_each_prefix(
    prefix: str,
    proxy: RunningServer,
    docker_images: DockerImages,
    request: pytest.FixtureRequest,
) -> None:
    upstream: Upstream = request.getfixturevalue(PREFIXES[prefix])
    repository, marker = _repository(), f"through {prefix} {uuid.uuid4().hex}"
    image = marker_image(marker)
    digest = upstream.seed(repository, "v1", image)
    ref = f"{proxy.host}/{prefix}/{repository}:v1"

    assert _pull_and_run(docker_images, ref) == marker
    repo_digests = run(["docker", "image", "inspect", "-f", "{{json .RepoDigests}}", ref]).stdout
    assert f"{proxy.host}/{prefix}/{repository}@{digest}" in json.loads(repo_digests)

    # The cache answers by digest too, with the upstream's bytes.
    got = requests.get(
        f"{proxy.url}/v2/{prefix}/{repository}/manifests/{digest}",
        headers={"Accept": ALL_MANIFEST_TYPES},
        timeout=30,
    )
    assert got.status_code == 200, got.text
    assert got.content == image.manifest
    assert got.headers["Docker-Content-Digest"] == digest


def test_second_pull_comes_from_the_cache(
    proxy: RunningServer, dist_upstream: Upstream, docker_images: DockerImages
) -> None:
    repository, marker = _repository(), f"cached {uuid.uuid4().hex}"
    image = marker_image(marker)
    dist_upstream.seed(repository, "v1", image)
    ref = f"{proxy.host}/dist/{repository}:v1"
    assert _pull_and_run(docker_images, ref) == marker
    marker_layer = image.layers[1].digest
    assert dist_upstream.blob_fetches()[marker_layer] == 1

    docker_images.remove(ref)
    assert _pull_and_run(docker_images, ref) == marker
    assert dist_upstream.blob_fetches()[marker_layer] == 1  # not fetched again
    assert dist_upstream.blob_fetches()[sha256(image.config)] == 1

    # Cached content is ordinary content: the catalog and the tag list show it.
    catalog = requests.get(f"{proxy.url}/v2/_catalog?n=10000", timeout=30).json()
    assert f"dist/{repository}" in catalog["repositories"]
    tags = requests.get(f"{proxy.url}/v2/dist/{repository}/tags/list", timeout=30).json()
    assert "v1" in tags["tags"]


def test_a_moved_tag_is_seen_after_the_ttl(
    proxy: RunningServer, dist_upstream: Upstream, docker_images: DockerImages
) -> None:
    repository = _repository()
    first, second = f"first {uuid.uuid4().hex}", f"second {uuid.uuid4().hex}"
    dist_upstream.seed(repository, "v1", marker_image(first))
    ref = f"{proxy.host}/distfast/{repository}:v1"
    assert _pull_and_run(docker_images, ref) == first

    moved = dist_upstream.seed(repository, "v1", marker_image(second))
    time.sleep(FAST_TTL_SECONDS + 0.5)
    assert _pull_and_run(docker_images, ref) == second
    head = requests.head(
        f"{proxy.url}/v2/distfast/{repository}/manifests/v1",
        headers={"Accept": ALL_MANIFEST_TYPES},
        timeout=30,
    )
    assert head.headers["Docker-Content-Digest"] == moved


def test_token_auth_upstream_gets_the_configured_credentials(
    proxy: RunningServer, dist_token_upstream: Upstream, token_issuer: TokenIssuer
) -> None:
    repository = _repository()
    image = marker_image(f"token {uuid.uuid4().hex}")
    digest = dist_token_upstream.seed(repository, "v1", image)
    asked = len(token_issuer.requests)
    got = requests.get(
        f"{proxy.url}/v2/distauth/{repository}/manifests/v1",
        headers={"Accept": ALL_MANIFEST_TYPES},
        timeout=30,
    )
    assert got.status_code == 200, got.text
    assert got.headers["Docker-Content-Digest"] == digest
    new = token_issuer.requests[asked:]
    assert new, "the proxy fetched from the token-auth upstream without a token"
    assert all(r["user"] == USERNAME for r in new), new
    assert any(f"repository:{repository}:pull" in r["scope"] for r in new), new


def test_upstream_refusing_the_credentials_is_a_clear_error(
    proxy: RunningServer, dist_token_upstream: Upstream, docker_images: DockerImages
) -> None:
    repository = _repository()
    dist_token_upstream.seed(repository, "v1", marker_image(f"refused {uuid.uuid4().hex}"))
    got = requests.get(
        f"{proxy.url}/v2/badauth/{repository}/manifests/v1",
        headers={"Accept": ALL_MANIFEST_TYPES},
        timeout=30,
    )
    # Not a 401: that would send the client to log in to Berth, which would not help. A 4xx
    # with a message, so that docker shows the message.
    assert got.status_code == 404, got.text
    error = got.json()["errors"][0]
    assert error["code"] == "MANIFEST_UNKNOWN", error
    assert dist_token_upstream.url in error["message"], error
    assert "refused" in error["message"], error
    assert WRONG_PASSWORD not in got.text

    ref = docker_images.pulled(f"{proxy.host}/badauth/{repository}:v1")
    pulled = run(["docker", "pull", ref], check=False)
    assert pulled.returncode != 0
    assert f"upstream registry {dist_token_upstream.url} refused" in pulled.stderr, pulled.stderr


def test_unknown_image_under_a_prefix_is_manifest_unknown(proxy: RunningServer) -> None:
    got = requests.get(
        f"{proxy.url}/v2/dist/pt/never-pushed-{uuid.uuid4().hex[:8]}/manifests/v1",
        headers={"Accept": ALL_MANIFEST_TYPES},
        timeout=30,
    )
    assert got.status_code == 404, got.text
    assert got.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"


def test_pushes_under_a_prefix_are_refused(
    proxy: RunningServer, busybox_image: str, docker_images: DockerImages
) -> None:
    got = requests.post(f"{proxy.url}/v2/dist/pt/pushed/blobs/uploads/", timeout=30)
    assert got.status_code == 405, got.text
    assert got.json()["errors"][0]["code"] == "UNSUPPORTED"

    deleted = requests.delete(
        f"{proxy.url}/v2/dist/pt/pushed/manifests/sha256:{'0' * 64}", timeout=30
    )
    assert deleted.status_code == 405, deleted.text
    assert deleted.json()["errors"][0]["code"] == "UNSUPPORTED"

    ref = docker_images.tag(busybox_image, f"{proxy.host}/dist/pt/pushed:v1")
    pushed = run(["docker", "push", ref], check=False)
    assert pushed.returncode != 0
    assert "unsupported" in (pushed.stdout + pushed.stderr).lower()


def test_concurrent_pulls_fetch_each_blob_once(
    proxy: RunningServer, dist_upstream: Upstream, tmp_path: Path
) -> None:
    repository = _repository()
    image = random_image(layers=3, layer_size=6 << 20)
    dist_upstream.seed(repository, "v1", image)
    source = f"docker://{proxy.host}/dist/{repository}:v1"

    copies = concurrent_pulls(source, tmp_path, 8)
    assert_each_pull_complete_and_fetched_once(copies, image, dist_upstream)


def test_a_cache_behind_berth_auth_needs_pull_on_the_cached_name(
    tmp_path: Path,
    dist_upstream: Upstream,
    docker_images: DockerImages,
    docker_config: dict[str, str],
) -> None:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"reader:{bcrypt.hashpw(b'reader-pw', bcrypt.gensalt(4)).decode()}\n")
    auth = {
        "htpasswd": {"realm": "cache", "path": str(htpasswd)},
        "access": [{"users": ["reader"], "repositories": ["dist/pt/**"], "actions": ["pull"]}],
    }
    server = start_proxy_berth(
        tmp_path / "authed",
        {"upstreams": [dist_upstream.proxy_entry("dist")]},
        extra={"auth": auth},
    )
    try:
        repository, marker = _repository(), f"authed {uuid.uuid4().hex}"
        dist_upstream.seed(repository, "v1", marker_image(marker))
        seeded = len(dist_upstream.access_log())
        ref = docker_images.pulled(f"{server.host}/dist/{repository}:v1")
        anonymous = run(["docker", "pull", ref], env=docker_config, check=False)
        assert anonymous.returncode != 0
        asked = [path for _, path, _ in dist_upstream.access_log()[seeded:] if repository in path]
        assert asked == []  # refused before anything was fetched upstream

        run(
            ["docker", "login", "-u", "reader", "--password-stdin", server.host],
            env=docker_config,
            input_text="reader-pw",
        )
        run(["docker", "pull", ref], env=docker_config)
        ran = run(["docker", "run", "--rm", "--network", "none", ref], env=docker_config)
        assert ran.stdout == marker
    finally:
        server.stop()
    assert_no_traceback(server)
