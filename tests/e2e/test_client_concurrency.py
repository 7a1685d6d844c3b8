"""Eight clients pushing images that share layers, at the same time: all succeed, every blob is
stored exactly once."""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import DockerImages, assert_no_traceback
from tests.support.clients import (
    IMAGE_PREFIX,
    blob_digests_of,
    get_manifest,
    manifest_digest,
    stored_blob_files,
)
from tests.support.layouts import make_layer, write_layout
from tests.support.server import RunningServer, registry_server

pytestmark = pytest.mark.e2e

CLIENTS = 8


@pytest.fixture
def fresh_registry(tmp_path: Path) -> Iterator[RunningServer]:
    """A registry of this test's own, so its blob count is exactly what the test pushed.
    Berth runs two worker processes (its default here: one per CPU), so concurrent uploads of
    one blob land in different processes."""
    with registry_server(tmp_path / "server", workers=2) as server:
        yield server
    assert_no_traceback(server)


def run_all(commands: list[list[str]]) -> None:
    """Start every command at once; wait for all; fail with the output of any that failed."""
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for cmd in commands
    ]
    outputs = [proc.communicate(timeout=600)[0] for proc in procs]
    failed = [
        (cmd, proc.returncode, out)
        for cmd, proc, out in zip(commands, procs, outputs, strict=True)
        if proc.returncode != 0
    ]
    assert not failed, "\n\n".join(f"{' '.join(c)} exited {rc}:\n{o}" for c, rc, o in failed)


def assert_each_blob_stored_once(
    server: RunningServer, expected: set[str], manifests: set[str]
) -> None:
    stored = stored_blob_files(server.data_dir)
    counts = Counter(digest for digest, _ in stored)
    assert "" not in counts, [str(p) for d, p in stored if not d]
    assert all(n == 1 for n in counts.values()), {d: n for d, n in counts.items() if n > 1}
    # Manifests may or may not live in the blob store (Distribution keeps them there).
    assert set(counts) - manifests == expected


def test_eight_skopeo_copies_sharing_layers(
    fresh_registry: RunningServer, repo: str, tmp_path: Path
) -> None:
    busybox = make_layer({"bin/busybox": Path("/bin/busybox").read_bytes()})
    shared = make_layer({"data/shared.bin": os.urandom(4 << 20)})
    images, commands = [], []
    for i in range(CLIENTS):
        unique = make_layer({f"data/client-{i}.txt": f"client {i} {tmp_path}\n".encode()})
        image = write_layout(tmp_path / f"layout{i}", "img", [busybox, shared, unique], f"c{i}")
        target = f"{repo}-{i % 3}:client{i}"  # three repositories, several tags each
        images.append((target, image))
        commands.append(
            [
                "skopeo",
                "copy",
                "--dest-tls-verify=false",
                f"oci:{tmp_path / f'layout{i}'}:img",
                f"docker://{fresh_registry.host}/{target}",
            ]
        )
    run_all(commands)

    expected: set[str] = set()
    for target, image in images:
        name, tag = target.split(":")
        assert manifest_digest(fresh_registry.url, name, tag) == image.manifest_digest
        expected |= {image.config_digest, *image.layer_digests}
        blob = requests.get(f"{fresh_registry.url}/v2/{name}/blobs/{shared.digest}", timeout=30)
        assert blob.status_code == 200
        assert blob.content == shared.blob
    assert len(expected) == 2 + 2 * CLIENTS  # busybox + shared, one unique layer + config each
    assert_each_blob_stored_once(
        fresh_registry, expected, {image.manifest_digest for _, image in images}
    )


def test_eight_docker_pushes_sharing_layers(
    fresh_registry: RunningServer,
    repo: str,
    docker_images: DockerImages,
    busybox_image: str,
    tmp_path: Path,
) -> None:
    base_ctx = tmp_path / "base"
    base_ctx.mkdir()
    (base_ctx / "shared.bin").write_bytes(os.urandom(4 << 20))
    (base_ctx / "Dockerfile").write_text(f"FROM {busybox_image}\nCOPY shared.bin /shared.bin\n")
    base = docker_images.build(base_ctx, f"{IMAGE_PREFIX}/conc-base:{tmp_path.name[-12:]}")
    refs = []
    for i in range(CLIENTS):
        ctx = tmp_path / f"ctx{i}"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(f"FROM {base}\nCOPY own.txt /own.txt\n")
        (ctx / "own.txt").write_text(f"client {i} {tmp_path}\n")
        local = docker_images.build(ctx, f"{IMAGE_PREFIX}/conc-{i}:{tmp_path.name[-12:]}")
        refs.append(docker_images.tag(local, f"{fresh_registry.host}/{repo}-{i}:1"))
    run_all([["docker", "push", ref] for ref in refs])

    expected: set[str] = set()
    manifests: set[str] = set()
    for i in range(CLIENTS):
        resp, manifest = get_manifest(fresh_registry.url, f"{repo}-{i}", "1")
        manifests.add(resp.headers["Docker-Content-Digest"])
        assert len(manifest["layers"]) == 3
        expected |= blob_digests_of(manifest)
    assert len(expected) == 2 + 2 * CLIENTS
    assert_each_blob_stored_once(fresh_registry, expected, manifests)
