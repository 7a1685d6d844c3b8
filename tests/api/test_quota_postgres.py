"""Quotas on PostgreSQL: pushes racing past a limit are serialized, the limit holds."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from registry import Config, create_app
from registry.config import QuotaRule
from registry.db import Database
from tests.api.conftest import ClientFactory
from tests.api.oci import digest_of, push_image
from tests.policies.recount import assert_counters_match

pytestmark = pytest.mark.postgres

BLOB, LIMIT, PUSHES = 300, 1000, 8  # room for three blobs of eight


@pytest.mark.parametrize(
    ("scope", "repositories"),
    [("repository", ["race/app"] * PUSHES), ("namespace", [f"race/r{i}" for i in range(PUSHES)])],
)
async def test_racing_pushes_stay_within_the_limit(
    aiohttp_client: ClientFactory,
    postgres_config: Config,
    scope: str,
    repositories: list[str],
) -> None:
    rules = (QuotaRule(("race/**",), LIMIT, scope=scope),)
    client = await aiohttp_client(create_app(dataclasses.replace(postgres_config, quotas=rules)))
    blobs = [bytes([i]) * BLOB for i in range(PUSHES)]

    async def push(repo: str, data: bytes) -> int:
        url = f"/v2/{repo}/blobs/uploads/?digest={digest_of(data)}"
        response = await client.post(url, data=data)
        if response.status == 403:
            assert (await response.json())["errors"][0]["code"] == "DENIED"
        return response.status

    statuses = await asyncio.gather(*(push(r, b) for r, b in zip(repositories, blobs, strict=True)))
    assert sorted(statuses) == [201] * (LIMIT // BLOB) + [403] * (PUSHES - LIMIT // BLOB)
    linked = 0
    for repo, data in zip(repositories, blobs, strict=True):
        head = await client.head(f"/v2/{repo}/blobs/{digest_of(data)}")
        linked += head.status == 200
    assert linked == LIMIT // BLOB


async def test_counters_follow_pushes_and_deletes(
    aiohttp_client: ClientFactory, postgres_config: Config
) -> None:
    client = await aiohttp_client(create_app(postgres_config))
    shared = b"shared" * 50
    first, _ = await push_image(client, "pgq/a", layer=shared)
    await push_image(client, "pgq/b", layer=shared)
    await push_image(client, "pgq/b", layer=b"own", reference="2")
    mount = await client.post(f"/v2/pgq/c/blobs/uploads/?mount={digest_of(shared)}&from=pgq/a")
    assert mount.status == 201
    assert (await client.delete(f"/v2/pgq/a/manifests/{first}")).status == 202
    assert (await client.delete(f"/v2/pgq/c/blobs/{digest_of(shared)}")).status == 202
    db = Database(postgres_config.database_url)
    try:
        async with db.read() as conn:
            await assert_counters_match(conn)
    finally:
        await db.dispose()
