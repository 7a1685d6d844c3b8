"""containerd's ctr against the registry: `ctr images push` and `ctr images pull --plain-http`."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import Containerd
from tests.support.clients import DOCKER_MANIFEST, blob_digests_of, get_manifest, run
from tests.support.server import RunningServer

pytestmark = pytest.mark.e2e


def image_digests(ctrd: Containerd) -> dict[str, str]:
    """`ctr images ls`: reference -> manifest digest."""
    lines = ctrd.ctr("images", "ls").stdout.splitlines()[1:]
    return {cols[0]: cols[2] for cols in (line.split() for line in lines)}


def test_push_then_pull(
    client_registry: RunningServer,
    repo: str,
    busybox_image: str,
    containerd: Containerd,
    tmp_path: Path,
) -> None:
    archive = tmp_path / "busybox.tar"
    run(["docker", "save", "-o", str(archive), busybox_image])
    containerd.ctr("images", "import", "--no-unpack", str(archive))
    source = next(ref for ref in image_digests(containerd) if busybox_image in ref)

    target = f"{client_registry.host}/{repo}:ctr"
    containerd.ctr("images", "tag", source, target)
    containerd.ctr("images", "push", "--plain-http", target)
    local_digest = image_digests(containerd)[target]
    resp, manifest = get_manifest(client_registry.url, repo, "ctr")
    assert resp.headers["Docker-Content-Digest"] == local_digest
    assert resp.headers["Content-Type"] == DOCKER_MANIFEST
    for digest in blob_digests_of(manifest):
        head = requests.head(f"{client_registry.url}/v2/{repo}/blobs/{digest}", timeout=30)
        assert head.status_code == 200, digest

    containerd.ctr("images", "rm", "--sync", source, target)
    leftover = containerd.ctr("content", "ls", "-q").stdout.split()
    assert not blob_digests_of(manifest) & set(leftover)

    containerd.ctr("images", "pull", "--plain-http", target)
    assert image_digests(containerd)[target] == local_digest
    stored = set(containerd.ctr("content", "ls", "-q").stdout.split())
    assert blob_digests_of(manifest) | {local_digest} <= stored
    containerd.ctr("images", "rm", "--sync", target)


def test_pull_oci_image(
    client_registry: RunningServer, repo: str, busybox_image: str, containerd: Containerd
) -> None:
    ref = f"{client_registry.host}/{repo}:from-skopeo"
    run(
        [
            "skopeo",
            "copy",
            "--dest-tls-verify=false",
            "--format",
            "oci",
            f"docker-daemon:{busybox_image}",
            f"docker://{ref}",
        ]
    )
    resp, manifest = get_manifest(client_registry.url, repo, "from-skopeo")
    out = containerd.ctr("images", "pull", "--plain-http", ref).stdout
    assert image_digests(containerd)[ref] == resp.headers["Docker-Content-Digest"]
    assert "done" in out
    stored = set(containerd.ctr("content", "ls", "-q").stdout.split())
    assert blob_digests_of(manifest) <= stored
    check = containerd.ctr("images", "check", f"name=={ref}").stdout
    assert "complete" in check, check
    containerd.ctr("images", "rm", "--sync", ref)
