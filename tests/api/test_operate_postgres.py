"""Webhooks under concurrency on both engines: events from concurrent pushes all arrive, each
once per endpoint. Readiness on PostgreSQL: `/readyz` turns 503 while the server is stopped,
and 200 once it is back."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from dataclasses import replace

import pytest
from prometheus_client import REGISTRY

from registry import Config, create_app
from registry.config import DatabaseConfig, EndpointConfig, NotificationsConfig
from registry.db import upgrade
from tests.api.conftest import ClientFactory
from tests.api.oci import OCI_MANIFEST, push_image
from tests.support.postgres import PostgresServer, pg_bin, running_postgres
from tests.support.webhooks import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.start()
    yield receiver
    receiver.stop()


async def test_concurrent_pushes_each_give_one_event_per_endpoint(
    aiohttp_client: ClientFactory, config: Config, receiver: Receiver
) -> None:
    endpoints = (
        EndpointConfig(name="a", url=receiver.url, ignoredmediatypes=("application/octet-stream",)),
        EndpointConfig(name="b", url=receiver.url, ignoredmediatypes=("application/octet-stream",)),
    )
    config = replace(config, notifications=NotificationsConfig(endpoints=endpoints))
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
    if not config.database_url.startswith("postgresql"):
        return  # SQLite reads and writes on the event loop's own connections, not the pool
    # The pool of this app's engine holds connections (the dispatcher may be using one).
    open_connections = REGISTRY.get_sample_value("berth_db_pool_connections") or 0
    in_use = REGISTRY.get_sample_value("berth_db_pool_connections_in_use")
    assert in_use is not None
    assert 0 <= in_use <= open_connections
    assert open_connections >= 1


def _pg_ctl(server: PostgresServer, *args: str) -> None:
    subprocess.run(
        [
            "runuser",
            "-u",
            "postgres",
            "--",
            str(pg_bin() / "pg_ctl"),
            "-D",
            str(server.directory / "data"),
            *args,
        ],
        check=True,
        capture_output=True,
    )


@pytest.mark.postgres
async def test_readyz_while_postgresql_is_stopped(
    aiohttp_client: ClientFactory, config: Config
) -> None:
    with running_postgres(max_connections=20) as server:  # its own: this test stops it
        url = server.url("postgres")
        upgrade(url)
        app = create_app(replace(config, database=DatabaseConfig(url=url)))
        client = await aiohttp_client(app)
        assert (await client.get("/readyz")).status == 200
        _pg_ctl(server, "-m", "fast", "-w", "stop")
        try:
            response = await client.get("/readyz")
            assert response.status == 503
            assert set(await response.json()) == {"database"}
        finally:
            options = (
                f"-p {server.port} -k {server.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
            )
            _pg_ctl(server, "-o", options, "-l", str(server.directory / "log"), "-w", "start")
        for _ in range(50):  # the pool drops its dead connections and reconnects
            response = await client.get("/readyz")
            if response.status == 200:
                break
            await asyncio.sleep(0.1)
        assert response.status == 200, await response.text()
        await client.close()
