"""`docker push` against `berth serve` with storage policies: refused over a quota with a clear
message, nothing stored, `berth quota` reporting what was let in; an immutable tag not moved."""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import write_busybox_context
from tests.e2e.oci_http import Registry
from tests.support.server import RunningServer, berth_executable, start_berth

pytestmark = pytest.mark.e2e

CONFIG = """\
quotas:
  - repositories: ["small/**"]
    limit: 256KiB
  - repositories: ["roomy/**"]
    limit: 64MiB
immutabletags:
  - repositories: ["roomy/**"]
    tags: ["v*"]
"""


def docker(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=300, env=env, check=False
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    config = tmp_path / "berth.yaml"
    config.write_text(CONFIG)
    running = start_berth(tmp_path / "data", workers=2, extra_args=["--config", str(config)])
    try:
        yield running
    finally:
        running.stop()
    assert "Traceback (most recent call last)" not in running.log()


def test_docker_push_over_quota_is_refused_with_the_limit(
    server: RunningServer, tmp_path: Path
) -> None:
    (tmp_path / "docker-config").mkdir()
    env = {**os.environ, "DOCKER_CONFIG": str(tmp_path / "docker-config")}
    suffix = uuid.uuid4().hex[:8]
    small, roomy = f"{server.host}/small/app:{suffix}", f"{server.host}/roomy/app:{suffix}"
    context = write_busybox_context(tmp_path / "ctx")
    build = docker("build", "-q", "-t", small, str(context), env=env)
    assert build.returncode == 0, build.stderr
    try:
        assert docker("tag", small, roomy, env=env).returncode == 0
        refused = docker("push", small, env=env)
        assert refused.returncode != 0
        output = refused.stdout + refused.stderr
        assert "denied: storage quota exceeded: repository small/app has a limit of 256.0 KiB " in (
            output
        ), output
        assert re.search(
            r"and uses \d+ bytes; this blob needs [\d.]+ MiB \(\d+ bytes\) more", output
        ), output

        pushed = docker("push", roomy, env=env)
        assert pushed.returncode == 0, pushed.stderr
    finally:
        docker("rmi", "-f", small, roomy, env=env)

    registry = Registry(server.url)
    assert registry.request("GET", f"/v2/small/app/manifests/{suffix}").status_code == 404
    tags = registry.request("GET", "/v2/roomy/app/tags/list").json()
    assert tags == {"name": "roomy/app", "tags": [suffix]}

    report = subprocess.run(
        [
            berth_executable(),
            "quota",
            "--config",
            str(tmp_path / "berth.yaml"),
            "--data-dir",
            str(server.data_dir),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    scopes = {s["name"]: s for s in json.loads(report.stdout)["scopes"]}
    assert scopes["roomy/app"]["usage"] > 256 * 1024  # the busybox layer made it in there
    assert scopes["roomy/app"]["limit"] == 64 * 1024 * 1024
    # small/app only ever got the blobs that fit (the image config), never the big layer.
    assert scopes["small/app"]["usage"] <= 256 * 1024


def test_docker_cannot_move_an_immutable_tag(server: RunningServer, tmp_path: Path) -> None:
    (tmp_path / "docker-config").mkdir()
    env = {**os.environ, "DOCKER_CONFIG": str(tmp_path / "docker-config")}
    ref = f"{server.host}/roomy/release:v1"
    first = write_busybox_context(tmp_path / "first")
    second = write_busybox_context(tmp_path / "second", "ENV CHANGED=1\n")
    try:
        assert docker("build", "-q", "-t", ref, str(first), env=env).returncode == 0
        pushed = docker("push", ref, env=env)
        assert pushed.returncode == 0, pushed.stderr
        digest = re.search(r"digest: (sha256:[0-9a-f]{64})", pushed.stdout)
        assert digest is not None, pushed.stdout
        assert docker("push", ref, env=env).returncode == 0  # the same image again: fine

        assert docker("build", "-q", "-t", ref, str(second), env=env).returncode == 0
        moved = docker("push", ref, env=env)
        assert moved.returncode != 0
        assert (
            f"denied: tag v1 of roomy/release is immutable: it points to {digest.group(1)} "
            "and cannot be moved to another manifest"
        ) in moved.stderr + moved.stdout
    finally:
        docker("rmi", "-f", ref, env=env)
    served = Registry(server.url).request("HEAD", "/v2/roomy/release/manifests/v1")
    assert served.headers["Docker-Content-Digest"] == digest.group(1)
