"""Fixtures for the puller tests: a registry, the `berth` CLI with its own state dir, mounts."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt
import pytest

from tests.support.server import RunningServer, berth_executable, registry_server, start_berth


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with registry_server(tmp_path_factory.mktemp("puller-registry")) as server:
        yield server


AUTH_USER, AUTH_PASSWORD = "puller", "puller-pw"


@pytest.fixture(params=["token", "basic"])
def auth_registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningServer]:
    """`berth serve` with one htpasswd user, behind its token service, then Basic auth."""
    htpasswd = tmp_path / "htpasswd"
    hashed = bcrypt.hashpw(AUTH_PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    htpasswd.write_text(f"{AUTH_USER}:{hashed}\n")
    config = tmp_path / "berth.yaml"
    config.write_text(f"auth:\n  scheme: {request.param}\n  htpasswd: {{path: {htpasswd}}}\n")
    server = start_berth(tmp_path / "registry", extra_args=["--config", str(config)])
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Berth:
    """Runs `berth <cmd> --root <state>`; unmounts whatever it mounted at teardown."""

    root: Path
    mounts: list[Path] = field(default_factory=list)

    def __call__(
        self, *args: str, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        argv = [berth_executable(), *args, "--root", str(self.root)]
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env={**os.environ, **(env or {})},
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} exited {proc.returncode}\n"
                f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
            )
        return proc

    def mount(self, reference: str, target: Path) -> Path:
        target.mkdir(parents=True, exist_ok=True)
        self("mount", reference, str(target))
        self.mounts.append(target)
        return target

    def umount(self, target: Path) -> None:
        self("umount", str(target))
        self.mounts.remove(target)

    def cleanup(self) -> None:
        for target in self.mounts:
            with contextlib.suppress(OSError):
                subprocess.run(["umount", str(target)], check=False, capture_output=True)
        self.mounts.clear()


@pytest.fixture
def berth(tmp_path: Path) -> Iterator[Berth]:
    cli = Berth(tmp_path / "state")
    try:
        yield cli
    finally:
        cli.cleanup()


def state_leftovers(root: Path) -> list[str]:
    """Temporary snapshot dirs and ingest files a failed pull might have left behind."""
    left = [p.name for p in (root / "snapshots").glob(".tmp-*")]
    left += [p.name for p in (root / "content" / "ingest").glob("*")]
    return left
