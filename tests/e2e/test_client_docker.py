"""The docker CLI and dockerd against the registry: push, pull, mounts, manifest lists, deletes."""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import DockerImages
from tests.support.clients import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    IMAGE_PREFIX,
    delete_manifest,
    get_manifest,
    manifest_digest,
    run,
)
from tests.support.server import RunningServer

pytestmark = pytest.mark.e2e

_PUSH_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64}) size: \d+")


def build_image(
    docker_images: DockerImages, context: Path, *, layers: int = 1, big_mib: int = 0
) -> str:
    """A busybox image FROM scratch whose first layer is unique (a marker file), plus
    `layers - 1` small layers, plus an optional `big_mib` MiB incompressible layer."""
    marker = uuid.uuid4().hex
    rootfs = context / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", rootfs / "bin" / "busybox")
    (rootfs / "marker").write_text(marker)
    lines = ["FROM scratch", "COPY rootfs/ /"]
    for i in range(1, layers):
        (context / f"layer{i}.txt").write_text(f"{marker} layer {i}\n")
        lines.append(f"COPY layer{i}.txt /layers/{i}.txt")
    if big_mib:
        block = bytearray(os.urandom(1 << 20))
        with (context / "big.bin").open("wb") as f:
            for i in range(big_mib):
                block[:8] = i.to_bytes(8, "big")  # every MiB differs, so nothing dedups
                f.write(block)
        lines.append("COPY big.bin /big.bin")
    lines.append('CMD ["/bin/busybox", "cat", "/marker"]')
    (context / "Dockerfile").write_text("\n".join(lines) + "\n")
    return docker_images.build(context, f"{IMAGE_PREFIX}/docker:{marker[:12]}")


def image_id(ref: str) -> str:
    return run(["docker", "image", "inspect", "-f", "{{.Id}}", ref]).stdout.strip()


def push(ref: str) -> tuple[str, str]:
    """`docker push`; returns (its output, the manifest digest it printed)."""
    out = run(["docker", "push", ref], timeout=900).stdout
    match = _PUSH_DIGEST.search(out)
    assert match, out
    return out, match.group(1)


def forget(docker_images: DockerImages, *refs: str) -> None:
    """Remove local images so the next pull really downloads."""
    docker_images.remove(*refs)
    for ref in refs:
        assert run(["docker", "image", "inspect", ref], check=False).returncode != 0


def run_in(ref: str, *argv: str) -> str:
    return run(["docker", "run", "--rm", "--network", "none", ref, *argv]).stdout


def test_push_pull_single_platform_schema2(
    client_registry: RunningServer, repo: str, docker_images: DockerImages, tmp_path: Path
) -> None:
    local = build_image(docker_images, tmp_path)
    marker = run_in(local)
    ref = docker_images.tag(local, f"{client_registry.host}/{repo}:1")
    want_id = image_id(local)
    _, digest = push(ref)

    resp, manifest = get_manifest(client_registry.url, repo, "1")
    assert resp.headers["Content-Type"] == DOCKER_MANIFEST
    assert resp.headers["Docker-Content-Digest"] == digest
    assert manifest["schemaVersion"] == 2
    assert manifest["config"]["digest"] == want_id

    forget(docker_images, local, ref)
    out = run(["docker", "pull", ref]).stdout
    assert f"Digest: {digest}" in out
    docker_images.pulled(ref)
    assert image_id(ref) == want_id
    assert run_in(ref) == marker


def test_push_pull_many_layers(
    client_registry: RunningServer, repo: str, docker_images: DockerImages, tmp_path: Path
) -> None:
    local = build_image(docker_images, tmp_path, layers=20)
    ref = docker_images.tag(local, f"{client_registry.host}/{repo}:many")
    want_id = image_id(local)
    out, digest = push(ref)
    assert out.count(": Pushed") == 20, out
    _, manifest = get_manifest(client_registry.url, repo, digest)
    assert len(manifest["layers"]) == 20

    forget(docker_images, local, ref)
    run(["docker", "pull", ref])
    docker_images.pulled(ref)
    assert image_id(ref) == want_id
    assert run_in(ref, "/bin/busybox", "cat", "/layers/19.txt").endswith("layer 19\n")


def test_push_pull_500mib_layer(
    client_registry: RunningServer, repo: str, docker_images: DockerImages, tmp_path: Path
) -> None:
    local = build_image(docker_images, tmp_path, big_mib=500)
    (tmp_path / "big.bin").unlink()
    ref = docker_images.tag(local, f"{client_registry.host}/{repo}:big")
    want_id = image_id(local)
    _, digest = push(ref)
    _, manifest = get_manifest(client_registry.url, repo, digest)
    assert (
        max(layer["size"] for layer in manifest["layers"]) > 500 * 2**20
    )  # random: gzip can't shrink it

    forget(docker_images, local, ref)
    run(["docker", "pull", ref], timeout=900)
    docker_images.pulled(ref)
    assert image_id(ref) == want_id  # dockerd checked every layer's diff_id on the way in
    assert run_in(ref, "/bin/busybox", "stat", "-c", "%s", "/big.bin").strip() == str(500 << 20)


def test_repush_unchanged_reports_every_layer_existing(
    client_registry: RunningServer, repo: str, docker_images: DockerImages, tmp_path: Path
) -> None:
    ref = docker_images.tag(
        build_image(docker_images, tmp_path, layers=3), f"{client_registry.host}/{repo}:same"
    )
    first, digest = push(ref)
    assert first.count(": Pushed") == 3, first
    again, digest_again = push(ref)
    assert digest_again == digest
    assert again.count(": Layer already exists") == 3, again
    assert ": Pushed" not in again


def test_cross_repository_push_mounts_blobs(
    client_registry: RunningServer, repo: str, docker_images: DockerImages, tmp_path: Path
) -> None:
    local = build_image(docker_images, tmp_path, layers=2)
    source = docker_images.tag(local, f"{client_registry.host}/{repo}-src:1")
    target = docker_images.tag(local, f"{client_registry.host}/{repo}-dst:1")
    _, digest = push(source)
    out, digest_target = push(target)
    assert digest_target == digest
    assert out.count(f": Mounted from {repo}-src") == 2, out
    assert ": Pushed" not in out
    _, manifest = get_manifest(client_registry.url, f"{repo}-dst", "1")
    assert manifest_digest(client_registry.url, f"{repo}-dst", "1") == digest
    assert len(manifest["layers"]) == 2


def test_pull_by_digest(
    client_registry: RunningServer, repo: str, docker_images: DockerImages, tmp_path: Path
) -> None:
    local = build_image(docker_images, tmp_path)
    ref = docker_images.tag(local, f"{client_registry.host}/{repo}:d")
    want_id = image_id(local)
    _, digest = push(ref)
    forget(docker_images, local, ref)

    by_digest = f"{client_registry.host}/{repo}@{digest}"
    out = run(["docker", "pull", by_digest]).stdout
    docker_images.pulled(by_digest)
    assert f"Digest: {digest}" in out
    assert image_id(by_digest) == want_id
    repo_digests = run(
        ["docker", "image", "inspect", "-f", "{{json .RepoDigests}}", by_digest]
    ).stdout
    assert by_digest in repo_digests


def test_manifest_list_create_annotate_push(
    client_registry: RunningServer,
    repo: str,
    docker_images: DockerImages,
    tmp_path: Path,
    docker_config: dict[str, str],
) -> None:
    base = f"{client_registry.host}/{repo}"
    amd64 = build_image(docker_images, tmp_path / "a")
    other = build_image(docker_images, tmp_path / "b")
    _, amd64_digest = push(docker_images.tag(amd64, f"{base}:amd64"))
    _, arm64_digest = push(docker_images.tag(other, f"{base}:arm64"))
    amd64_id = image_id(amd64)

    env = docker_config
    run(
        [
            "docker",
            "manifest",
            "create",
            "--insecure",
            f"{base}:list",
            f"{base}:amd64",
            f"{base}:arm64",
        ],
        env=env,
    )
    run(
        [
            "docker",
            "manifest",
            "annotate",
            f"{base}:list",
            f"{base}:arm64",
            "--os",
            "linux",
            "--arch",
            "arm64",
            "--variant",
            "v8",
        ],
        env=env,
    )
    out = run(
        ["docker", "manifest", "push", "--insecure", "--purge", f"{base}:list"], env=env
    ).stdout
    list_digest = out.strip().splitlines()[-1]
    assert list_digest.startswith("sha256:")

    resp, index = get_manifest(client_registry.url, repo, "list")
    assert resp.headers["Content-Type"] == DOCKER_LIST
    assert resp.headers["Docker-Content-Digest"] == list_digest
    platforms = {m["digest"]: m["platform"] for m in index["manifests"]}
    assert platforms[amd64_digest]["architecture"] == "amd64"
    assert platforms[arm64_digest] == {"architecture": "arm64", "os": "linux", "variant": "v8"}

    forget(docker_images, amd64, other, f"{base}:amd64", f"{base}:arm64")
    ref = docker_images.pulled(f"{base}:list")
    out = run(["docker", "pull", ref]).stdout
    assert f"Digest: {list_digest}" in out
    assert image_id(ref) == amd64_id  # dockerd picked linux/amd64 out of the list


def test_tag_overwrite(
    client_registry: RunningServer, repo: str, docker_images: DockerImages, tmp_path: Path
) -> None:
    ref = f"{client_registry.host}/{repo}:moving"
    first = build_image(docker_images, tmp_path / "1")
    second = build_image(docker_images, tmp_path / "2")
    _, first_digest = push(docker_images.tag(first, ref))
    _, second_digest = push(docker_images.tag(second, ref))
    assert first_digest != second_digest
    # Each call is a new connection, so with several workers every one of them answers some.
    seen = {manifest_digest(client_registry.url, repo, "moving") for _ in range(20)}
    assert seen == {second_digest}
    assert manifest_digest(client_registry.url, repo, first_digest) == first_digest

    second_id = image_id(second)
    forget(docker_images, first, second, ref)
    run(["docker", "pull", ref])
    docker_images.pulled(ref)
    assert image_id(ref) == second_id


@pytest.mark.parametrize("by", ["digest", "tag"])
def test_pull_of_deleted_tag_fails(
    client_registry: RunningServer, repo: str, docker_images: DockerImages, tmp_path: Path, by: str
) -> None:
    local = build_image(docker_images, tmp_path)
    ref = docker_images.tag(local, f"{client_registry.host}/{repo}:gone")
    _, digest = push(ref)
    resp = delete_manifest(client_registry.url, repo, digest if by == "digest" else "gone")
    assert resp.status_code == 202, (resp.status_code, resp.text)

    forget(docker_images, local, ref)
    proc = run(["docker", "pull", ref], check=False)
    assert proc.returncode != 0
    assert "manifest unknown" in proc.stderr or "not found" in proc.stderr, proc.stderr


def test_login_and_logout_without_auth(
    client_registry: RunningServer, docker_config: dict[str, str]
) -> None:
    out = run(
        ["docker", "login", "-u", "someone", "--password-stdin", client_registry.host],
        env=docker_config,
        input_text="secret\n",
    ).stdout
    assert "Login Succeeded" in out
    run(["docker", "logout", client_registry.host], env=docker_config)
