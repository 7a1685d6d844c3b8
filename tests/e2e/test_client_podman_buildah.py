"""podman and buildah against the registry: push and pull with OCI manifests."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import ContainersEnv
from tests.support.clients import OCI_INDEX, OCI_MANIFEST, get_manifest, manifest_digest, run
from tests.support.server import RunningServer

pytestmark = pytest.mark.e2e

NO_TLS = "--tls-verify=false"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


@pytest.fixture
def seeded(client_registry: RunningServer, repo: str, busybox_image: str) -> str:
    """`<host>/<repo>:src`: the busybox image, copied out of dockerd as Docker schema 2."""
    ref = f"{client_registry.host}/{repo}:src"
    run(
        [
            "skopeo",
            "copy",
            "--dest-tls-verify=false",
            f"docker-daemon:{busybox_image}",
            f"docker://{ref}",
        ]
    )
    return ref


def assert_oci_image(registry: RunningServer, repo: str, tag: str) -> str:
    resp, manifest = get_manifest(registry.url, repo, tag)
    assert resp.headers["Content-Type"] == OCI_MANIFEST
    assert manifest["mediaType"] == OCI_MANIFEST
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    assert {layer["mediaType"] for layer in manifest["layers"]} == {OCI_LAYER_GZIP}
    return resp.headers["Docker-Content-Digest"]


def test_podman_push_pull_oci(
    client_registry: RunningServer, repo: str, seeded: str, containers_env: ContainersEnv
) -> None:
    podman = containers_env.podman
    podman("pull", NO_TLS, seeded)
    target = f"{client_registry.host}/{repo}:oci"
    podman("tag", seeded, target)
    podman("push", NO_TLS, "--format", "oci", target)
    digest = assert_oci_image(client_registry, repo, "oci")

    podman("rmi", "-f", seeded, target)
    assert (
        run(
            [
                "podman",
                "--root",
                str(containers_env.root),
                "--runroot",
                str(containers_env.runroot),
                "image",
                "exists",
                target,
            ],
            env=containers_env.env,
            check=False,
        ).returncode
        == 1
    )
    podman("pull", NO_TLS, target)
    inspected = json.loads(podman("image", "inspect", target).stdout)[0]
    assert inspected["Digest"] == digest
    assert podman("run", "--rm", target, "/bin/busybox", "echo", "ran").stdout == "ran\n"


def test_buildah_commit_push_pull_oci(
    client_registry: RunningServer,
    repo: str,
    seeded: str,
    containers_env: ContainersEnv,
    tmp_path: Path,
) -> None:
    buildah = containers_env.buildah
    payload = tmp_path / "payload.txt"
    payload.write_text(f"built by buildah {uuid.uuid4()}\n")
    container = buildah("from", NO_TLS, seeded).stdout.strip()
    buildah("copy", container, str(payload), "/payload.txt")
    buildah("config", "--label", "berth.test=buildah", container)
    target = f"{client_registry.host}/{repo}:built"
    buildah("commit", "-q", container, target)
    buildah("rm", container)
    buildah("push", NO_TLS, "--format", "oci", target)
    digest = assert_oci_image(client_registry, repo, "built")
    _, manifest = get_manifest(client_registry.url, repo, "built")
    assert len(manifest["layers"]) == 2

    buildah("rmi", "-f", target, seeded)
    buildah("pull", NO_TLS, target)
    inspected = json.loads(buildah("inspect", "--type", "image", target).stdout)
    assert inspected["FromImageDigest"] == digest
    assert inspected["OCIv1"]["config"]["Labels"]["berth.test"] == "buildah"
    out = containers_env.podman("run", "--rm", target, "/bin/busybox", "cat", "/payload.txt")
    assert out.stdout == payload.read_text()


def test_podman_manifest_push_oci_index(
    client_registry: RunningServer,
    repo: str,
    seeded: str,
    containers_env: ContainersEnv,
    tmp_path: Path,
) -> None:
    podman, buildah = containers_env.podman, containers_env.buildah
    container = buildah("from", NO_TLS, seeded).stdout.strip()
    (tmp_path / "arm.txt").write_text("pretend arm64\n")
    buildah("copy", container, str(tmp_path / "arm.txt"), "/arm.txt")
    other = f"{client_registry.host}/{repo}:other"
    buildah("commit", "-q", container, other)
    buildah("rm", container)
    buildah("push", NO_TLS, other)

    listed = f"{client_registry.host}/{repo}:list"
    podman("manifest", "create", listed)
    podman("manifest", "add", NO_TLS, listed, f"docker://{seeded}")
    podman("manifest", "add", NO_TLS, "--arch", "arm64", listed, f"docker://{other}")
    podman("manifest", "push", NO_TLS, "--all", listed, f"docker://{listed}")

    resp, index = get_manifest(client_registry.url, repo, "list")
    assert resp.headers["Content-Type"] == OCI_INDEX
    assert sorted(m["platform"]["architecture"] for m in index["manifests"]) == ["amd64", "arm64"]
    # skopeo copy --all of the index into another repository keeps every digest.
    run(
        [
            "skopeo",
            "copy",
            "--all",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            f"docker://{listed}",
            f"docker://{client_registry.host}/{repo}-copy:list",
        ]
    )
    copy_resp, copied = get_manifest(client_registry.url, f"{repo}-copy", "list")
    assert copy_resp.headers["Docker-Content-Digest"] == resp.headers["Docker-Content-Digest"]
    for entry in copied["manifests"]:
        assert (
            manifest_digest(client_registry.url, f"{repo}-copy", entry["digest"]) == entry["digest"]
        )
