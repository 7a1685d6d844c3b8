"""A real Docker engine pushes an image it built to `berth serve` and pulls it back.

The image is built FROM scratch with Debian's static busybox (no Docker Hub here), pushed,
removed locally, pulled by tag and by digest, and run with no network. Every image name is
prefixed `berth-regtest` and removed by exactly that name at the end.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.oci_http import DOCKER_MANIFEST, Registry, digest_of
from tests.support.server import RunningServer, registry_server

pytestmark = pytest.mark.e2e


def docker(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=300, env=env, check=False
    )
    if check and result.returncode != 0:
        pytest.fail(f"docker {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """`berth serve` with two workers sharing the socket, as `make run` starts it here."""
    with registry_server(tmp_path, workers=2) as running:
        yield running


@pytest.fixture
def docker_env(tmp_path: Path) -> dict[str, str]:
    """A DOCKER_CONFIG of this test's own, so nothing lands in ~/.docker."""
    config = tmp_path / "docker-config"
    config.mkdir()
    return {**os.environ, "DOCKER_CONFIG": str(config)}


@pytest.fixture
def image_names(docker_env: dict[str, str]) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    if names:
        docker("rmi", "-f", *names, env=docker_env, check=False)


def test_docker_build_push_rmi_pull_run(
    server: RunningServer, tmp_path: Path, docker_env: dict[str, str], image_names: list[str]
) -> None:
    context = tmp_path / "context"
    context.mkdir()
    shutil.copy("/bin/busybox", context / "busybox")
    (context / "hello.txt").write_text("pushed through berth\n")
    (context / "Dockerfile").write_text(
        "FROM scratch\n"
        "COPY busybox /bin/busybox\n"
        "COPY hello.txt /hello.txt\n"
        'CMD ["/bin/busybox", "cat", "/hello.txt"]\n'
    )
    repo = f"berth-regtest/busybox-{uuid.uuid4().hex[:8]}"
    ref = f"{server.host}/{repo}:1"
    image_names.append(ref)
    docker("build", "-q", "-t", ref, str(context), env=docker_env)
    local_id = docker("image", "inspect", "-f", "{{.Id}}", ref, env=docker_env).stdout.strip()

    pushed = docker("push", ref, env=docker_env)
    match = re.search(r"digest: (sha256:[0-9a-f]{64}) size: (\d+)", pushed.stdout)
    assert match, pushed.stdout
    digest, size = match.group(1), int(match.group(2))

    # What the engine pushed is what the registry serves: a Docker schema2 manifest whose
    # config is the local image, every blob present with the right digest.
    reg = Registry(server.url)
    got = reg.request("GET", f"/v2/{repo}/manifests/1")
    assert got.status_code == 200
    assert got.headers["Content-Type"] == DOCKER_MANIFEST
    assert got.headers["Docker-Content-Digest"] == digest
    assert len(got.content) == size
    assert digest_of(got.content) == digest
    manifest = json.loads(got.content)
    assert manifest["config"]["digest"] == local_id
    assert len(manifest["layers"]) == 2
    for blob in (manifest["config"], *manifest["layers"]):
        response = reg.request("GET", f"/v2/{repo}/blobs/{blob['digest']}")
        assert response.status_code == 200
        assert digest_of(response.content) == blob["digest"]
        assert len(response.content) == blob["size"]
    assert reg.request("GET", f"/v2/{repo}/tags/list").json() == {"name": repo, "tags": ["1"]}

    # A second push finds every layer in place (HEAD) and yields the same digest.
    again = docker("push", ref, env=docker_env)
    assert again.stdout.count("Layer already exists") == 2, again.stdout
    assert f"digest: {digest} size: {size}" in again.stdout

    docker("rmi", ref, env=docker_env)
    assert docker("image", "inspect", ref, env=docker_env, check=False).returncode != 0

    pulled = docker("pull", ref, env=docker_env)
    assert f"Digest: {digest}" in pulled.stdout
    assert docker("image", "inspect", "-f", "{{.Id}}", ref, env=docker_env).stdout.strip() == (
        local_id
    )
    ran = docker(
        "run", "--rm", "--network", "none", ref, "/bin/busybox", "echo", "ok", env=docker_env
    )
    assert ran.stdout == "ok\n"
    ran = docker("run", "--rm", "--network", "none", ref, env=docker_env)
    assert ran.stdout == "pushed through berth\n"

    by_digest = f"{server.host}/{repo}@{digest}"
    image_names.append(by_digest)
    docker("rmi", ref, env=docker_env)
    docker("pull", by_digest, env=docker_env)
    ran = docker(
        "run", "--rm", "--network", "none", by_digest, "/bin/busybox", "echo", "ok", env=docker_env
    )
    assert ran.stdout == "ok\n"
