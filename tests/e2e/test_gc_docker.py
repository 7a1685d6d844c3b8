"""`docker push` of 20 images while `berth gc` runs in a loop with the default grace.

Before the pushes, an image sharing their busybox layer is pushed and deleted, and the whole
store is made to look two hours old: the collector then removes that image's link and
blobs while docker pushes the same layer to new repositories. Every push must succeed and
pull back.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import update

from registry.db import Database, WriteConnection
from registry.db.models import blobs, manifests, repository_blobs, utcnow
from tests.e2e.conftest import assert_no_traceback
from tests.support.server import RunningServer, berth_executable, registry_server

pytestmark = pytest.mark.e2e

IMAGES = 20
PARALLEL_PUSHES = 4
GC_PASSES = 200  # bound for the collector loop


def docker(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=600, env=env, check=False
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with registry_server(tmp_path, workers=2) as running:
        yield running
    assert_no_traceback(running)


@pytest.fixture
def docker_env(tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "docker-config"
    config.mkdir()
    return {**os.environ, "DOCKER_CONFIG": str(config)}


@pytest.fixture
def image_names(docker_env: dict[str, str]) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    if names:
        docker("rmi", "-f", *names, env=docker_env)


def build(context: Path, ref: str, text: str, env: dict[str, str]) -> None:
    context.mkdir(parents=True)
    shutil.copy("/bin/busybox", context / "busybox")
    (context / "id.txt").write_text(text)
    (context / "Dockerfile").write_text(
        'FROM scratch\nCOPY busybox /bin/busybox\nCOPY id.txt /id.txt\nCMD ["/bin/busybox"]\n'
    )
    result = docker("build", "-q", "-t", ref, str(context), env=env)
    assert result.returncode == 0, result.stderr


async def age_everything(url: str) -> None:
    db = Database(url)
    then = utcnow() - timedelta(hours=2)

    async def work(conn: WriteConnection) -> None:
        await conn.execute(update(blobs).values(created_at=then, touched_at=then))
        await conn.execute(update(repository_blobs).values(created_at=then))
        await conn.execute(update(manifests).values(created_at=then))

    try:
        await db.transact(work)
    finally:
        await db.dispose()


def test_docker_pushes_succeed_while_gc_runs(
    server: RunningServer, tmp_path: Path, docker_env: dict[str, str], image_names: list[str]
) -> None:
    prefix = f"berth-regtest/gc-{uuid.uuid4().hex[:6]}"
    old = f"{server.host}/{prefix}/old:1"
    image_names.append(old)
    build(tmp_path / "old", old, "old", docker_env)
    pushed = docker("push", old, env=docker_env)
    assert pushed.returncode == 0, pushed.stderr
    digest = re.search(r"digest: (sha256:[0-9a-f]{64})", pushed.stdout)
    assert digest
    deleted = requests.delete(
        f"{server.url}/v2/{prefix}/old/manifests/{digest.group(1)}", timeout=30
    )
    assert deleted.status_code == 202
    asyncio.run(age_everything(f"sqlite+aiosqlite:///{server.data_dir / 'registry.db'}"))

    refs = [f"{server.host}/{prefix}/app{n % 4}:{n}" for n in range(IMAGES)]
    image_names.extend(refs)
    for n, ref in enumerate(refs):
        build(tmp_path / f"ctx{n}", ref, f"image {n}\n", docker_env)

    stop = threading.Event()
    passes: list[dict[str, object]] = []
    failures: list[str] = []

    def collect() -> None:
        for _ in range(GC_PASSES):
            if stop.is_set():
                return
            result = subprocess.run(
                [berth_executable(), "gc", "--data-dir", str(server.data_dir), "--json"],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            if result.returncode != 0:
                failures.append(result.stderr)
            else:
                passes.append(json.loads(result.stdout))

    collector = threading.Thread(target=collect)
    collector.start()
    try:
        with ThreadPoolExecutor(PARALLEL_PUSHES) as pool:
            results = list(pool.map(lambda ref: docker("push", ref, env=docker_env), refs))
    finally:
        stop.set()
        collector.join(timeout=600)

    assert [r.stderr for r in results if r.returncode != 0] == []
    assert failures == []
    assert passes, "no garbage collection pass completed during the pushes"
    removed = sum(p["removed"]["blobs"] for p in passes)  # type: ignore[index]  # JSON
    assert removed >= 1, passes  # the old image's own layer and config at least

    docker("rmi", "-f", *refs, env=docker_env)
    for n, ref in enumerate(refs):
        pulled = docker("pull", ref, env=docker_env)
        assert pulled.returncode == 0, pulled.stderr
        out = docker(
            "run",
            "--rm",
            "--network",
            "none",
            ref,
            "/bin/busybox",
            "cat",
            "/id.txt",
            env=docker_env,
        )
        assert out.stdout == f"image {n}\n", out.stderr
