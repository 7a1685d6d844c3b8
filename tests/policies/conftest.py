"""Storage policies (quotas, immutable tags, retention) over real HTTP, on SQLite and (under
-m postgres) PostgreSQL, as every API test."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse

from registry import Config, create_app
from registry.config import ImmutableTagRule, QuotaRule, RetentionRule
from tests.api.conftest import ClientFactory, config
from tests.api.oci import Client

__all__ = ["config"]  # the fixture of tests/api: SQLite, and PostgreSQL under -m postgres

PolicyClient = Callable[..., Coroutine[Any, Any, Client]]


@pytest.fixture
def policy_client(aiohttp_client: ClientFactory, config: Config) -> PolicyClient:
    """A client for a registry with the given rules, on this test's data directory."""

    async def make(
        *,
        quotas: tuple[QuotaRule, ...] = (),
        immutabletags: tuple[ImmutableTagRule, ...] = (),
        retention: tuple[RetentionRule, ...] = (),
    ) -> Client:
        rules = dataclasses.replace(
            config, quotas=quotas, immutabletags=immutabletags, retention=retention
        )
        return await aiohttp_client(create_app(rules))

    return make


def blob_file(config: Config, digest: str) -> Path:
    algorithm, hex_digest = digest.split(":")
    return config.blob_root / "blobs" / algorithm / hex_digest[:2] / hex_digest


async def denied(response: ClientResponse) -> str:
    """The message of a DENIED error response, after checking its status and code."""
    assert response.status == 403, await response.text()
    body = await response.json()
    assert body["errors"][0]["code"] == "DENIED", body
    return str(body["errors"][0]["message"])
