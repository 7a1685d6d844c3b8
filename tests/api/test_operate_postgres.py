"""Webhooks and readiness on PostgreSQL: events from concurrent pushes all arrive, each once
per endpoint; `/readyz` turns 503 while the server is stopped, and 200 once it is back."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from registry import Config, create_app
from registry.config import DatabaseConfig, EndpointConfig, NotificationsConfig
from registry.db import upgrade
from tests.api.conftest import ClientFactory
from tests.api.oci import OCI_MANIFEST, push_image
from tests.support.postgres import PostgresServer, pg_bin, running_postgres
from tests.support.webhooks import Receiver

pytestmark = pytest.mark.postgres


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.start()
    yield receiver
    receiver.stop()


async def test_concurrent_pushes_each_give_one_event_per_endpoint(
    postgres_url: str, aiohttp_client: ClientFactory, tmp_path: Path, receiver: Receiver
) -> None:
    endpoints = (
        EndpointConfig(name="a", url=receiver.url, ignoredmediatypes=("application/octet-stream",)),
        EndpointConfig(name="b", url=receiver.url, ignoredmediatypes=("application/octet-stream",)),
    )
    config = Config(
        datadir=str(tmp_path),
        database=DatabaseConfig(url=postgres_url),
        notifications=NotificationsConfig(endpoints=endpoints),
    )
    open_before = _gauge("berth_db_pool_connections")
    in_use_before = _gauge("berth_db_pool_connections_in_use")
    client = await aiohttp_client(create_app(config))
    pushes = await asyncio.gather(
        *(
            push_image(client, "pg/hooks", layer=f"layer {i}".encode(), reference=f"t{i}")
            for i in range(10)
        )
    )
    events = await receiver.await_events(lambda evs: len(evs) >= 20)
    assert len(events) == 20
    for tag, (digest, _) in zip((f"t{i}" for i in range(10)), pushes, strict=True):
        matching = [e for e in events if e["target"]["tag"] == tag]
        assert [e["target"]["digest"] for e in matching] == [digest, digest]
        assert len({e["id"] for e in matching}) == 1  # one event, sent to both endpoints
        assert matching[0]["target"]["mediaType"] == OCI_MANIFEST
    # The pool of this app's engine holds connections (the dispatcher may be using one).
    opened = _gauge("berth_db_pool_connections") - open_before
    in_use = _gauge("berth_db_pool_connections_in_use") - in_use_before
    assert opened >= 1
    assert 0 <= in_use <= opened


def _gauge(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def _pg_ctl(server: PostgresServer, *args: str) -> None:
    data = str(server.directory / "data")
    argv = ["runuser", "-u", "postgres", "--", str(pg_bin() / "pg_ctl"), "-D", data, *args]
    subprocess.run(argv, check=True, capture_output=True, timeout=120)


async def test_readyz_while_postgresql_is_stopped(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    # A cluster of its own: the session's is shared with every other test.
    with running_postgres(max_connections=20) as server:
        server.sql("CREATE DATABASE readyz")
        upgrade(server.url("readyz"))
        config = Config(datadir=str(tmp_path), database=DatabaseConfig(url=server.url("readyz")))
        client = await aiohttp_client(create_app(config))
        assert (await client.get("/readyz")).status == 200
        _pg_ctl(server, "-m", "fast", "-w", "stop")
        response = await client.get("/readyz")
        assert response.status == 503
        assert set(await response.json()) == {"database"}
        options = f"-p {server.port} -k {server.directory} -c listen_addresses=127.0.0.1"
        _pg_ctl(server, "-o", options, "-l", str(server.directory / "log"), "-w", "start")
        for _ in range(50):  # the pool drops its dead connections and reconnects
            response = await client.get("/readyz")
            if response.status == 200:
                break
            await asyncio.sleep(0.1)
        assert response.status == 200, await response.text()
        await client.close()  # before the cluster goes
