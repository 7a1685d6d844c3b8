"""Pull-through cache tests: a real upstream registry (a second `berth serve`, or an aiohttp
server in the test where the upstream must misbehave), and the caching registry under test
from `create_app` on the `database_url` fixture (SQLite, and PostgreSQL when marked)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from registry import Config, create_app
from registry.config import DatabaseConfig, ProxyConfig, UpstreamConfig
from tests.api.oci import Client
from tests.proxy.forwarder import Forwarder
from tests.support.server import RunningServer, start_berth

ClientFactory = Callable[..., Coroutine[Any, Any, TestClient[web.Request, web.Application]]]
CacheFactory = Callable[..., Coroutine[Any, Any, TestClient[web.Request, web.Application]]]


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A Berth registry the cache fetches from, shared by a module's tests (each uses its own
    repository names)."""
    server = start_berth(tmp_path_factory.mktemp("upstream") / "data")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def upstream_session(upstream: RunningServer) -> AsyncIterator[Client]:
    """Talks to the upstream directly: pushes what the cache will fetch (with the helpers of
    tests/api/oci.py, which take relative paths as a TestClient does)."""
    async with aiohttp.ClientSession(base_url=upstream.url) as session:
        yield cast(Client, session)


@pytest.fixture
def base_config(tmp_path: Path, database_url: str) -> Config:
    data = tmp_path / "cache-data"
    data.mkdir()
    return Config(datadir=str(data), database=DatabaseConfig(url=database_url))


@pytest.fixture
def make_cache(aiohttp_client: ClientFactory, base_config: Config) -> CacheFactory:
    """A caching registry: `await make_cache(remoteurl, prefix="up", ttl=300.0)`; prefix None
    makes it a whole-registry mirror of `remoteurl`."""

    async def make(
        remoteurl: str,
        *,
        prefix: str | None = "up",
        ttl: float = 300.0,
        username: str = "",
        password: str = "",
        dockerconfig: str = "",
        config: Config | None = None,
    ) -> TestClient[web.Request, web.Application]:
        if prefix is None:
            proxy = ProxyConfig(
                remoteurl=remoteurl,
                username=username,
                password=password,
                ttl=ttl,
                dockerconfig=dockerconfig,
            )
        else:
            upstream = UpstreamConfig(
                prefix=prefix, remoteurl=remoteurl, username=username, password=password, ttl=ttl
            )
            proxy = ProxyConfig(upstreams=(upstream,), dockerconfig=dockerconfig)
        return await aiohttp_client(
            create_app(dataclasses.replace(config or base_config, proxy=proxy))
        )

    return make


@pytest.fixture
async def forwarder(
    upstream: RunningServer, aiohttp_server: Callable[..., Coroutine[Any, Any, Any]]
) -> tuple[Forwarder, str]:
    """The upstream behind a counting (and, on demand, slow or lying) forwarder: (it, its URL)."""
    forwarder = Forwarder(upstream.url)
    server = await aiohttp_server(forwarder.app())
    return forwarder, f"http://127.0.0.1:{server.port}"
