"""Upstreams that want credentials: Basic, and the Bearer token flow with tokens reused."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp
import bcrypt
import pytest

from registry import Config, create_app
from registry.db import upgrade
from tests.api.oci import error_code, push_image
from tests.proxy.conftest import CacheFactory
from tests.proxy.forwarder import Forwarder

Server = Callable[..., Coroutine[Any, Any, Any]]
USER, PASSWORD = "mirror", "mirror-pw"


async def _upstream_with_auth(
    tmp_path: Path, aiohttp_server: Server, scheme: str
) -> tuple[Forwarder, str]:
    """A Berth registry wanting USER's password (scheme basic or token), behind a forwarder
    that counts requests (token requests included: the realm is the Host asked)."""
    htpasswd = tmp_path / "htpasswd"
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    htpasswd.write_text(f"{USER}:{hashed}\n")
    auth: dict[str, Any] = {"htpasswd": {"path": str(htpasswd)}, "admins": [USER]}
    if scheme == "basic":
        auth["scheme"] = "basic"
    config = Config(datadir=str(tmp_path / "upstream-data"), auth=auth)
    upgrade(config.database_url)
    server = await aiohttp_server(create_app(config))
    forwarder = Forwarder(f"http://127.0.0.1:{server.port}")
    front = await aiohttp_server(forwarder.app())
    return forwarder, f"http://127.0.0.1:{front.port}"


async def _push(url: str, repo: str, scheme: str) -> tuple[str, bytes]:
    basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    headers = {"Authorization": basic}
    async with aiohttp.ClientSession(base_url=url) as session:
        if scheme == "token":
            params = {"scope": f"repository:{repo}:pull,push"}
            async with session.get("/auth/token", params=params, headers=headers) as response:
                assert response.status == 200, await response.text()
                headers = {"Authorization": f"Bearer {(await response.json())['token']}"}
    async with aiohttp.ClientSession(base_url=url, headers=headers) as session:
        return await push_image(session, repo)  # type: ignore[arg-type]


@pytest.mark.parametrize("scheme", ["basic", "token"])
async def test_pulls_from_an_upstream_that_wants_credentials(
    tmp_path: Path, aiohttp_server: Server, make_cache: CacheFactory, scheme: str
) -> None:
    counter, url = await _upstream_with_auth(tmp_path, aiohttp_server, scheme)
    digest, payload = await _push(url, "private/app", scheme)
    cache = await make_cache(url, username=USER, password=PASSWORD)
    tokens_before = counter.requests[("GET", "/auth/token")]

    response = await cache.get("/v2/up/private/app/manifests/latest")
    assert response.status == 200, await response.text()
    assert await response.read() == payload
    manifest = json.loads(payload)
    for descriptor in (manifest["config"], *manifest["layers"]):
        blob = await cache.get(f"/v2/up/private/app/blobs/{descriptor['digest']}")
        assert blob.status == 200, await blob.text()
    if scheme == "token":  # one token for the repository's pull scope, reused
        assert counter.requests[("GET", "/auth/token")] == tokens_before + 1

    anonymous = await make_cache(url)
    response = await anonymous.get(f"/v2/up/private/app/manifests/{digest}")
    assert response.status == 200  # cached: the upstream is not asked
    response = await anonymous.get("/v2/up/private/other/manifests/latest")
    assert response.status == 404
    assert await error_code(response) == "MANIFEST_UNKNOWN"
    message = (await response.json())["errors"][0]["message"]
    assert (
        message == f"upstream registry {url} refused the cache's credentials and nothing is cached"
    )


async def test_credentials_from_a_docker_config(
    tmp_path: Path, aiohttp_server: Server, make_cache: CacheFactory
) -> None:
    _, url = await _upstream_with_auth(tmp_path, aiohttp_server, "token")
    _, payload = await _push(url, "docker/config", "token")
    docker_config = tmp_path / "config.json"
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    docker_config.write_text(json.dumps({"auths": {url.removeprefix("http://"): {"auth": auth}}}))
    cache = await make_cache(url, dockerconfig=str(docker_config))
    response = await cache.get("/v2/up/docker/config/manifests/latest")
    assert response.status == 200, await response.text()
    assert await response.read() == payload
