"""API tests: `create_app(config)` on a freshly migrated database, over real HTTP.

Every test runs twice: on SQLite, and on PostgreSQL (the `database_url` fixture's `postgres`
parameter, marked so that `make test-fast` stays on SQLite)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from registry import Config, create_app
from registry.config import DatabaseConfig, DeleteConfig, StorageConfig

ClientFactory = Callable[..., Coroutine[Any, Any, TestClient[web.Request, web.Application]]]


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> Config:
    data = tmp_path / "data"
    data.mkdir()
    return Config(datadir=str(data), database=DatabaseConfig(url=database_url))


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
    return await aiohttp_client(create_app(dataclasses.replace(config, storage=storage)))
