"""API tests: `create_app(config)` on a freshly migrated SQLite database, over real HTTP."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from registry import Config, create_app
from registry.config import DatabaseConfig, DeleteConfig, StorageConfig
from registry.db import upgrade
from tests.support.server import free_port

ClientFactory = Callable[..., Coroutine[Any, Any, TestClient[web.Request, web.Application]]]


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate once per session; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "registry.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
def config(tmp_path: Path, migrated_db: Path) -> Config:
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(migrated_db, data / "registry.db")
    return Config(datadir=str(data))


@pytest.fixture
async def client(
    aiohttp_client: ClientFactory, config: Config
) -> TestClient[web.Request, web.Application]:
    return await aiohttp_client(create_app(config))


@pytest.fixture
async def client_no_delete(
    aiohttp_client: ClientFactory, config: Config
) -> TestClient[web.Request, web.Application]:
    storage = StorageConfig(delete=DeleteConfig(enabled=False))
    return await aiohttp_client(create_app(Config(datadir=config.datadir, storage=storage)))


@dataclass
class PostgresServer:
    port: int
    directory: Path

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    assert found, "PostgreSQL is not installed (scripts/test-env.sh installs it)"
    return found[-1].parent


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster (initdb as the postgres user, trust auth, no fsync)."""
    pg_bin = _pg_bin()
    directory = Path(tempfile.mkdtemp(prefix="berth-pg-"))
    shutil.chown(directory, "postgres")
    data = directory / "data"
    as_postgres = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*as_postgres, str(pg_bin / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    port = free_port()
    options = f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [
            *as_postgres,
            str(pg_bin / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(directory / "log"),
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield PostgresServer(port, directory)
    finally:
        subprocess.run(
            [*as_postgres, str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
            capture_output=True,
        )
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def postgres_config(postgres_server: PostgresServer, tmp_path: Path) -> Config:
    database = "t_" + uuid.uuid4().hex[:12]
    subprocess.run(
        [
            "runuser",
            "-u",
            "postgres",
            "--",
            str(_pg_bin() / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(postgres_server.port),
            database,
        ],
        check=True,
        capture_output=True,
    )
    url = postgres_server.url(database)
    upgrade(url)
    data = tmp_path / "data"
    data.mkdir()
    return Config(datadir=str(data), database=DatabaseConfig(url=url))


@pytest.fixture
async def pg_client(
    aiohttp_client: ClientFactory, postgres_config: Config
) -> TestClient[web.Request, web.Application]:
    return await aiohttp_client(create_app(postgres_config))
