"""API tests: `create_app(config)` on a freshly migrated SQLite database, over real HTTP."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from registry import Config, create_app
from registry.config import DeleteConfig, StorageConfig
from registry.db import upgrade

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
