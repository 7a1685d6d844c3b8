"""Pushes racing past a limit: the limit holds (on PostgreSQL the counter row orders them)."""

from __future__ import annotations

import asyncio

import pytest

from registry.config import QuotaRule
from tests.api.oci import digest_of
from tests.policies.conftest import PolicyClient

BLOB, LIMIT, PUSHES = 300, 1000, 8  # room for three blobs of eight


@pytest.mark.parametrize(
    ("scope", "repositories"),
    [("repository", ["race/app"] * PUSHES), ("namespace", [f"race/r{i}" for i in range(PUSHES)])],
)
async def test_racing_pushes_stay_within_the_limit(
    policy_client: PolicyClient, scope: str, repositories: list[str]
) -> None:
    client = await policy_client(quotas=(QuotaRule(("race/**",), LIMIT, scope=scope),))
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
