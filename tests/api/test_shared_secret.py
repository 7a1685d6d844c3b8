"""http.secret: configured, or created once in the database, the same for every replica."""

from __future__ import annotations

import dataclasses
from typing import Any

from registry import Config, create_app
from registry.config import HTTPConfig
from registry.http.keys import HTTP_SECRET
from registry.shared_secret import derive


async def test_replicas_share_one_secret_and_a_configured_one_wins(
    aiohttp_client: Any, config: Config
) -> None:
    one = await aiohttp_client(create_app(config))
    two = await aiohttp_client(create_app(config))
    made = one.app[HTTP_SECRET]
    assert len(made) >= 32
    assert two.app[HTTP_SECRET] == made
    configured = dataclasses.replace(config, http=HTTPConfig(secret="from-the-config"))
    three = await aiohttp_client(create_app(configured))
    assert three.app[HTTP_SECRET] == b"from-the-config"
    assert derive(made, "cookies") != derive(made, "upload-state")
    assert derive(made, "cookies") == derive(two.app[HTTP_SECRET], "cookies")
