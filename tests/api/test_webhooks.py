"""Webhooks from the outbox, in process: what a receiver gets for pushes, mounts, deletes and
pulls, with Distribution's envelope; what `ignore` leaves out; and that an event is only
written when its change commits."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import insert, select, text

from registry import Config, create_app
from registry.config import EndpointConfig, IgnoreConfig, NotificationsConfig
from registry.db import Database, WriteConnection
from registry.db.models import utcnow, webhook_outbox
from registry.http.keys import EVENTS
from registry.webhooks import Dispatcher
from registry.webhooks.dispatcher import RETENTION
from tests.api.conftest import ClientFactory
from tests.api.oci import OCI_MANIFEST, digest_of, push_blob, push_image
from tests.support.server import berth_executable
from tests.support.webhooks import Receiver

Client = TestClient[web.Request, web.Application]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.start()
    yield receiver
    receiver.stop()


def with_endpoints(config: Config, *endpoints: EndpointConfig) -> Config:
    return replace(config, notifications=NotificationsConfig(endpoints=endpoints))


async def test_push_sends_distributions_envelope(
    config: Config, aiohttp_client: ClientFactory, receiver: Receiver
) -> None:
    endpoint = EndpointConfig(name="ci", url=receiver.url, headers={"Authorization": ["Bearer x"]})
    client = await aiohttp_client(create_app(with_endpoints(config, endpoint)))
    digest, manifest = await push_image(
        client, "hooks/app", reference="v1", extra=None, media_type=OCI_MANIFEST
    )
    events = await receiver.await_events(lambda evs: any(e["target"].get("tag") for e in evs))
    manifest_events = [e for e in events if e["target"]["mediaType"] == OCI_MANIFEST]
    assert len(manifest_events) == 1, events
    event = manifest_events[0]
    assert event["action"] == "push"
    target = event["target"]
    assert target["digest"] == digest
    assert target["size"] == target["length"] == len(manifest)
    assert target["repository"] == "hooks/app"
    assert target["tag"] == "v1"
    assert target["url"].endswith(f"/v2/hooks/app/manifests/{digest}")
    assert event["request"]["method"] == "PUT"
    assert event["request"]["id"]
    assert event["source"]["instanceID"]
    assert event["id"]
    assert event["timestamp"].endswith("Z")
    blob_pushes = [e for e in events if e["target"]["mediaType"] == "application/octet-stream"]
    assert {e["action"] for e in blob_pushes} == {"push"}
    assert len(blob_pushes) == 2  # the config and the layer
    headers = receiver.requests[0]
    assert headers["Content-Type"] == "application/vnd.docker.distribution.events.v1+json"
    assert headers["Authorization"] == "Bearer x"


async def test_request_id_travels_from_client_to_event(
    config: Config, aiohttp_client: ClientFactory, receiver: Receiver
) -> None:
    ignore_blobs = EndpointConfig(
        name="ci", url=receiver.url, ignoredmediatypes=("application/octet-stream",)
    )
    client = await aiohttp_client(create_app(with_endpoints(config, ignore_blobs)))
    config_digest = await push_blob(client, "hooks/rid", b"{}")
    manifest = (
        b'{"schemaVersion":2,"mediaType":"' + OCI_MANIFEST.encode() + b'","config":'
        b'{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"'
        + config_digest.encode()
        + b'","size":2},"layers":[]}'
    )
    response = await client.put(
        "/v2/hooks/rid/manifests/t",
        data=manifest,
        headers={"Content-Type": OCI_MANIFEST, "X-Request-Id": "req-42"},
    )
    assert response.status == 201
    assert response.headers["X-Request-Id"] == "req-42"
    events = await receiver.await_events(lambda evs: len(evs) >= 1)
    assert [e["request"]["id"] for e in events] == ["req-42"]  # no blob events: ignored
    assert events[0]["target"]["digest"] == digest_of(manifest)


async def test_delete_mount_and_pull_events(
    config: Config, aiohttp_client: ClientFactory, receiver: Receiver
) -> None:
    endpoint = EndpointConfig(name="all", url=receiver.url)
    client = await aiohttp_client(create_app(with_endpoints(config, endpoint)))
    digest, _ = await push_image(client, "hooks/src", reference="v1")
    layer = digest_of(b"layer bytes")
    response = await client.post(f"/v2/hooks/dst/blobs/uploads/?mount={layer}&from=hooks/src")
    assert response.status == 201
    assert (await client.get("/v2/hooks/src/manifests/v1")).status == 200
    assert (await client.delete("/v2/hooks/src/manifests/v1")).status == 202
    assert (await client.delete(f"/v2/hooks/src/manifests/{digest}")).status == 202
    events = await receiver.await_events(lambda evs: len(evs) >= 7)
    actions = [(e["action"], e["target"].get("tag"), e["target"].get("digest")) for e in events]
    assert actions[3:] == [
        ("mount", None, layer),
        ("pull", "v1", digest),
        ("delete", "v1", None),
        ("delete", None, digest),
    ]
    mount = events[3]["target"]
    assert (mount["repository"], mount["fromRepository"]) == ("hooks/dst", "hooks/src")


async def test_ignored_actions_write_nothing(
    config: Config, aiohttp_client: ClientFactory, receiver: Receiver
) -> None:
    """With pulls ignored, a pull writes no row: pulls stay read-only."""
    endpoint = EndpointConfig(
        name="ci", url=receiver.url, ignore=IgnoreConfig(actions=("pull", "delete"))
    )
    client = await aiohttp_client(create_app(with_endpoints(config, endpoint)))
    await push_image(client, "hooks/quiet", reference="v1")
    await receiver.await_events(lambda evs: len(evs) >= 3)
    before = await outbox_rows(config)
    layer = digest_of(b"layer bytes")
    for _ in range(3):
        assert (await client.get("/v2/hooks/quiet/manifests/v1")).status == 200
        assert (await client.get(f"/v2/hooks/quiet/blobs/{layer}")).status == 200
    assert (await client.delete("/v2/hooks/quiet/manifests/v1")).status == 202
    assert await outbox_rows(config) == before == 3
    assert {e["action"] for e in receiver.events} == {"push"}


async def test_refused_manifest_writes_no_event(
    config: Config, aiohttp_client: ClientFactory, receiver: Receiver
) -> None:
    endpoint = EndpointConfig(name="ci", url=receiver.url)
    client = await aiohttp_client(create_app(with_endpoints(config, endpoint)))
    manifest = b'{"schemaVersion":2,"mediaType":"' + OCI_MANIFEST.encode() + b'","config":'
    manifest += b'{"mediaType":"x/y","digest":"sha256:' + b"0" * 64 + b'","size":2},"layers":[]}'
    response = await client.put(
        "/v2/hooks/bad/manifests/t", data=manifest, headers={"Content-Type": OCI_MANIFEST}
    )
    assert response.status == 400  # MANIFEST_BLOB_UNKNOWN: the transaction rolled back
    assert await outbox_rows(config) == 0


async def outbox_rows(config: Config, where: str = "") -> int:
    db = Database(config.database_url)
    try:
        async with db.read() as conn:
            query = text(f"select count(*) from webhook_outbox {where}")
            return int((await conn.execute(query)).scalar_one())
    finally:
        await db.dispose()


async def test_berth_events_lists_failing_deliveries(
    config: Config, aiohttp_client: ClientFactory
) -> None:
    down = Receiver()  # never started: connection refused
    url = down.url.replace("http://", "http://hook:pw-x@") + "?token=hook-secret"
    endpoint = EndpointConfig(name="down", url=url, ignoredmediatypes=("application/octet-stream",))
    client = await aiohttp_client(create_app(with_endpoints(config, endpoint)))
    await push_image(client, "hooks/cli", reference="v1")
    for _ in range(200):  # the dispatcher records its first failure
        if await outbox_rows(config, "where last_error is not null"):
            break
        await asyncio.sleep(0.05)
    config_file = Path(config.datadir).parent / "config.yml"
    config_file.write_text(
        yaml.safe_dump({"notifications": {"endpoints": [{"name": "down", "url": url}]}})
    )
    out = berth_events(config, "--config", str(config_file))
    header, row = out.splitlines()
    assert header.split()[:4] == ["ENDPOINT", "EVENT", "ACTION", "REPOSITORY/TARGET"]
    assert row.split()[0] == "down"
    assert row.split()[2:4] == ["push", "hooks/cli:v1"]
    assert "ClientConnectorError" in row
    assert "hook-secret" not in out
    assert "pw-x" not in out
    assert "no longer configured" not in row
    failed = berth_events(config, "--config", str(config_file), "--failed").splitlines()
    assert [line.split()[1] for line in failed[1:]] == [row.split()[1]]
    # With the endpoint gone from the configuration, its leftovers say so.
    (orphan,) = berth_events(config).splitlines()[1:]
    assert "(endpoint no longer configured)" in orphan


def berth_events(config: Config, *args: str) -> str:
    argv = [berth_executable(), "events", "--data-dir", config.datadir, *args]
    environ = {**os.environ, "BERTH_DATABASE_URL": config.database_url}
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=60, check=False, env=environ
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_one_push_event_per_tag(
    config: Config, aiohttp_client: ClientFactory, receiver: Receiver
) -> None:
    endpoint = EndpointConfig(
        name="ci", url=receiver.url, ignoredmediatypes=("application/octet-stream",)
    )
    client = await aiohttp_client(create_app(with_endpoints(config, endpoint)))
    digest, manifest = await push_image(client, "hooks/tags", reference=None)
    response = await client.put(
        f"/v2/hooks/tags/manifests/{digest}?tag=a&tag=b&tag=a",
        data=manifest,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert response.status == 201
    events = await receiver.await_events(lambda evs: len(evs) >= 3)
    assert [(e["target"]["digest"], e["target"].get("tag")) for e in events] == [
        (digest, None),  # the push by digest alone
        (digest, "a"),
        (digest, "b"),
    ]


async def test_events_of_endpoints_gone_from_the_config_are_pruned_after_a_day(
    config: Config, db: Database
) -> None:
    old = utcnow() - RETENTION - timedelta(minutes=1)
    rows = [
        ("kept", old, None),  # still configured, undelivered: waits for its receiver
        ("kept", old, old),  # delivered a day ago: pruned
        ("gone", old, None),  # nothing will ever send it: pruned
        ("gone", utcnow(), None),  # recent: kept for a day (`berth events` shows it)
    ]

    async def insert_rows(conn: WriteConnection) -> None:
        for number, (endpoint, created, delivered) in enumerate(rows):
            await conn.execute(
                insert(webhook_outbox).values(
                    endpoint=endpoint,
                    event_id=f"e{number}",
                    action="push",
                    repository="r",
                    payload="{}",
                    created_at=created,
                    delivered_at=delivered,
                )
            )

    await db.transact(insert_rows)
    dispatcher = Dispatcher(db, [EndpointConfig(name="kept", url="http://127.0.0.1:9/")])
    assert await dispatcher.prune_once() == 1
    async with db.read() as conn:
        query = select(webhook_outbox.c.event_id).order_by(webhook_outbox.c.id)
        assert list((await conn.execute(query)).scalars()) == ["e0", "e3"]
    assert await Dispatcher(db, []).has_events()


async def test_an_unsatisfiable_range_is_no_pull(
    config: Config, aiohttp_client: ClientFactory
) -> None:
    down = Receiver()  # never started: events stay in the outbox, where they can be counted
    client = await aiohttp_client(
        create_app(with_endpoints(config, EndpointConfig(name="ci", url=down.url)))
    )
    await push_image(client, "hooks/range", reference="v1")
    layer = digest_of(b"layer bytes")
    refused = await client.get(f"/v2/hooks/range/blobs/{layer}", headers={"Range": "bytes=99999-"})
    assert refused.status == 416
    pulls = client.app[EVENTS].pulls
    assert pulls.pending == 0  # a pull is noted as its GET is answered: this one was none
    partial = await client.get(f"/v2/hooks/range/blobs/{layer}", headers={"Range": "bytes=0-3"})
    assert (partial.status, await partial.read()) == (206, b"laye")
    assert pulls.pending == 1
    await _eventually(lambda: outbox_rows(config, "where action = 'pull'"), 1)


async def test_pull_events_are_written_off_the_response_path_once_a_minute(
    config: Config, aiohttp_client: ClientFactory
) -> None:
    """A pull is noted, not written, by its GET; the background flush writes it within a
    second or so. The same object pulled again by the same user within a minute is no new
    event; by another reference it is."""
    down = Receiver()  # never started: events stay in the outbox, where they can be counted
    client = await aiohttp_client(
        create_app(with_endpoints(config, EndpointConfig(name="ci", url=down.url)))
    )
    digest, _ = await push_image(client, "hooks/often", reference="v1")
    for _ in range(20):
        assert (await client.get("/v2/hooks/often/manifests/v1")).status == 200
    assert (await client.get(f"/v2/hooks/often/manifests/{digest}")).status == 200
    await _eventually(lambda: outbox_rows(config, "where action = 'pull'"), 2)
    await asyncio.sleep(1.5)  # another flush or more: still the two
    assert await outbox_rows(config, "where action = 'pull'") == 2


async def _eventually(count: Callable[[], Awaitable[int]], wanted: int, limit: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + limit
    while (found := await count()) != wanted:
        assert asyncio.get_running_loop().time() < deadline, f"{found} rows, not {wanted}"
        await asyncio.sleep(0.1)
