"""skopeo against the registry: copy between docker://, oci: and dir:, inspect, list-tags,
delete and sync."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from tests.support.clients import (
    DOCKER_MANIFEST,
    OCI_MANIFEST,
    blob_digests_of,
    get_manifest,
    list_tags,
    manifest_digest,
    run,
    sha256_file,
)
from tests.support.server import RunningServer

pytestmark = pytest.mark.e2e

NO_TLS = "--tls-verify=false"
DEST_NO_TLS = "--dest-tls-verify=false"
SRC_NO_TLS = "--src-tls-verify=false"


def skopeo(*args: str) -> str:
    return run(["skopeo", *args]).stdout


@pytest.fixture
def seeded(client_registry: RunningServer, repo: str, busybox_image: str) -> str:
    """`<host>/<repo>:1`, copied from dockerd's busybox image as Docker schema 2."""
    ref = f"{client_registry.host}/{repo}:1"
    skopeo("copy", DEST_NO_TLS, f"docker-daemon:{busybox_image}", f"docker://{ref}")
    return ref


def test_copy_registry_to_oci_layout_and_back(
    client_registry: RunningServer, repo: str, seeded: str, tmp_path: Path
) -> None:
    layout = tmp_path / "layout"
    skopeo("copy", SRC_NO_TLS, f"docker://{seeded}", f"oci:{layout}:bb")
    index = json.loads((layout / "index.json").read_text())
    top = index["manifests"][0]
    assert top["annotations"]["org.opencontainers.image.ref.name"] == "bb"
    manifest_file = layout / "blobs" / "sha256" / top["digest"].split(":")[1]
    manifest = json.loads(manifest_file.read_text())
    assert top["mediaType"] == OCI_MANIFEST
    for digest in blob_digests_of(manifest):
        assert sha256_file(layout / "blobs" / "sha256" / digest.split(":")[1]) == digest

    skopeo("copy", DEST_NO_TLS, f"oci:{layout}:bb", f"docker://{client_registry.host}/{repo}-oci:2")
    resp, pushed = get_manifest(client_registry.url, f"{repo}-oci", "2")
    assert resp.headers["Content-Type"] == OCI_MANIFEST
    assert resp.headers["Docker-Content-Digest"] == top["digest"]  # byte-for-byte the layout's
    assert pushed == manifest
    for digest in blob_digests_of(manifest):
        blob = requests.get(f"{client_registry.url}/v2/{repo}-oci/blobs/{digest}", timeout=30)
        assert blob.status_code == 200
        assert blob.content == (layout / "blobs" / "sha256" / digest.split(":")[1]).read_bytes()


def test_copy_registry_to_dir_and_back(
    client_registry: RunningServer, repo: str, seeded: str, tmp_path: Path
) -> None:
    target = tmp_path / "dir"
    skopeo("copy", SRC_NO_TLS, f"docker://{seeded}", f"dir:{target}")
    original = manifest_digest(client_registry.url, repo, "1")
    assert sha256_file(target / "manifest.json") == original
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["mediaType"] == DOCKER_MANIFEST
    for digest in blob_digests_of(manifest):
        assert sha256_file(target / digest.split(":")[1]) == digest

    skopeo("copy", DEST_NO_TLS, f"dir:{target}", f"docker://{client_registry.host}/{repo}-dir:3")
    assert manifest_digest(client_registry.url, f"{repo}-dir", "3") == original


def test_inspect(client_registry: RunningServer, repo: str, seeded: str) -> None:
    info = json.loads(skopeo("inspect", NO_TLS, f"docker://{seeded}"))
    resp, manifest = get_manifest(client_registry.url, repo, "1")
    assert info["Digest"] == resp.headers["Docker-Content-Digest"]
    assert info["Layers"] == [layer["digest"] for layer in manifest["layers"]]
    assert info["Architecture"] == "amd64"
    assert info["Os"] == "linux"
    assert "1" in info["RepoTags"]
    raw = run(["skopeo", "inspect", NO_TLS, "--raw", f"docker://{seeded}"]).stdout
    assert raw.encode() == resp.content
    config = json.loads(skopeo("inspect", NO_TLS, "--config", f"docker://{seeded}"))
    assert config["rootfs"]["diff_ids"]


def test_list_tags(client_registry: RunningServer, repo: str, seeded: str) -> None:
    for tag in ("2", "latest", "v1.0.0"):
        skopeo(
            "copy",
            SRC_NO_TLS,
            DEST_NO_TLS,
            f"docker://{seeded}",
            f"docker://{client_registry.host}/{repo}:{tag}",
        )
    out = json.loads(skopeo("list-tags", NO_TLS, f"docker://{client_registry.host}/{repo}"))
    assert out["Repository"] == f"{client_registry.host}/{repo}"
    assert sorted(out["Tags"]) == ["1", "2", "latest", "v1.0.0"]


def test_delete(client_registry: RunningServer, repo: str, seeded: str) -> None:
    digest = manifest_digest(client_registry.url, repo, "1")
    skopeo("delete", NO_TLS, f"docker://{seeded}")
    resp = requests.get(f"{client_registry.url}/v2/{repo}/manifests/{digest}", timeout=30)
    assert resp.status_code == 404
    assert resp.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    proc = run(["skopeo", "inspect", NO_TLS, f"docker://{seeded}"], check=False)
    assert proc.returncode != 0
    assert "manifest unknown" in proc.stderr, proc.stderr


def test_sync_whole_repository(client_registry: RunningServer, repo: str, seeded: str) -> None:
    for tag in ("2", "3"):
        skopeo(
            "copy",
            SRC_NO_TLS,
            DEST_NO_TLS,
            f"docker://{seeded}",
            f"docker://{client_registry.host}/{repo}:{tag}",
        )
    skopeo(
        "sync",
        "--src",
        "docker",
        "--dest",
        "docker",
        SRC_NO_TLS,
        DEST_NO_TLS,
        f"{client_registry.host}/{repo}",
        f"{client_registry.host}/{repo}-mirror",
    )
    mirrored = f"{repo}-mirror/{repo.rsplit('/', 1)[1]}"  # sync appends the last path element
    assert sorted(list_tags(client_registry.url, mirrored)) == ["1", "2", "3"]
    for tag in ("1", "2", "3"):
        assert manifest_digest(client_registry.url, mirrored, tag) == manifest_digest(
            client_registry.url, repo, tag
        )
