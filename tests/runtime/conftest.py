"""Fixtures for the runtime tests: a registry holding small busybox images (built in Python,
plus one from `docker build`), a Berth state dir with them pulled, and the same images in
dockerd for side-by-side checks. Names are prefixed `berthrt-` and removed at the end."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.runtime import images
from tests.support.images import push_image
from tests.support.server import berth_executable, registry_server

RUNTIMES = ("berth", "runc", "crun")


def sh(
    *argv: str, check: bool = True, timeout: float = 120, **kw: Any
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{argv} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@dataclass(frozen=True)
class Images:
    base: str  # busybox + /etc, CMD sh
    app: str  # + a layer; ENV, WORKDIR, USER, ENTRYPOINT and CMD in its config
    built: str  # `docker build` FROM scratch with /bin/busybox, pushed by docker
    layered: str  # 60+ layers with a whiteout and an opaque directory


@dataclass(frozen=True)
class Berth:
    root: Path

    def run(
        self, runtime: str, *args: str, timeout: float = 60, **kw: Any
    ) -> subprocess.CompletedProcess[str]:
        return sh(
            berth_executable(),
            "run",
            "--root",
            str(self.root),
            "--runtime",
            runtime,
            *args,
            check=False,
            timeout=timeout,
            **kw,
        )

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return sh(berth_executable(), *args, "--root", str(self.root), check=False)

    def containers(self) -> list[str]:
        d = self.root / "containers"
        return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


@functools.cache
def docker_run(*args: str) -> subprocess.CompletedProcess[str]:
    """`docker run --rm --network none ARGS`; cached, as the runtime-parametrized tests ask the
    same question of docker once per runtime."""
    return sh("docker", "run", "--rm", "--network", "none", *args, check=False, timeout=120)


def _docker_build(context: Path, tag: str) -> None:
    shutil.copy(images.BUSYBOX, context / "busybox")
    (context / "Dockerfile").write_text(
        "FROM scratch\n"
        "COPY busybox /bin/busybox\n"
        'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
        'RUN ["/bin/busybox", "mkdir", "-p", "/work/dir"]\n'
        "ENV MODE=built PATH=/bin\n"
        "WORKDIR /work/dir\n"
        'CMD ["sh", "-c", "echo built in $(pwd) as $(id -u) mode=$MODE"]\n'
    )
    sh("docker", "build", "--network", "none", "-q", "-t", tag, str(context), timeout=300)
    sh("docker", "push", tag, timeout=300)


@pytest.fixture(scope="session")
def registry_images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Images]:
    prefix = f"berthrt-{uuid.uuid4().hex[:8]}"
    with registry_server(tmp_path_factory.mktemp("rt-registry")) as server:
        base = f"{server.host}/{prefix}/base:1"
        app = f"{server.host}/{prefix}/app:1"
        built = f"{server.host}/{prefix}/built:1"
        layered = f"{server.host}/{prefix}/layered:1"
        push_image(server.url, f"{prefix}/base", "1", images.base_image())
        push_image(server.url, f"{prefix}/app", "1", images.app_image())
        push_image(server.url, f"{prefix}/layered", "1", images.many_layers_image())
        tags = [base, app, built, layered]
        try:
            _docker_build(tmp_path_factory.mktemp("rt-build"), built)
            for tag in (base, app, layered):
                sh("docker", "pull", "-q", tag, timeout=300)
            yield Images(base, app, built, layered)
        finally:
            for tag in tags:
                sh("docker", "rmi", "-f", tag, check=False)


@pytest.fixture(scope="session")
def berth(registry_images: Images, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Berth]:
    """A Berth state dir with the test images already pulled (`berth run` pulls the rest)."""
    from puller import ImageStore

    root = tmp_path_factory.mktemp("rt-berth")
    store = ImageStore(root)

    async def pull_all() -> None:
        for ref in (
            registry_images.base,
            registry_images.app,
            registry_images.built,
            registry_images.layered,
        ):
            await store.pull(ref, plain_http=True)

    asyncio.run(pull_all())
    yield Berth(root)
    for cid in Berth(root).containers():
        with contextlib.suppress(OSError):
            sh(berth_executable(), "rm", "-f", "--root", str(root), cid, check=False)


@pytest.fixture(params=RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def host_dir(tmp_path: Path) -> Path:
    d = tmp_path / "host"
    d.mkdir()
    os.chmod(d, 0o777)
    return d
