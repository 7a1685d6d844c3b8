"""UI tests over HTTP: `create_app` on a migrated SQLite database, pages read as HTML."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from registry import Config, create_app
from registry.config import DatabaseConfig
from registry.http.keys import DATABASE
from registry.ui.paging import PageSpec
from registry.ui.usage import read_usage
from tests.auth.conftest import USERS, htpasswd

__all__ = ["USERS", "htpasswd"]  # a fixture shared with the auth tests

# admin may do everything; alice and puller may only pull; anonymous may pull public/**.
ACCESS = [
    {"users": ["alice", "puller"], "repositories": ["**"], "actions": ["pull"]},
    {"users": ["anonymous"], "repositories": ["public/**"], "actions": ["pull"]},
]

Client = TestClient[Any, Any]
AppFactory = Callable[..., Awaitable[Client]]


def htpasswd_auth(path: Path) -> dict[str, Any]:
    return {
        "scheme": "basic",
        "htpasswd": {"realm": "berth", "path": str(path)},
        "admins": ["admin"],
        "access": ACCESS,
    }


@pytest.fixture
def make_client(tmp_path: Path, database_url: str, aiohttp_client: Any) -> AppFactory:
    """Apps on one database (`database_url`: SQLite, and PostgreSQL under -m postgres)."""

    async def make(**config: Any) -> Client:
        database = DatabaseConfig(url=database_url)
        app = create_app(Config(datadir=str(tmp_path / "data"), database=database, **config))
        return await aiohttp_client(app)  # type: ignore[no-any-return]

    return make


@pytest.fixture
async def client(make_client: AppFactory) -> Client:
    return await make_client()


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


async def log_in(client: Client, user: str, password: str) -> Any:
    form = await client.get("/ui/login")
    return await client.post(
        "/ui/login",
        data={"csrf": csrf_of(await form.text()), "username": user, "password": password},
        allow_redirects=False,
    )


async def first_snapshot(client: Client) -> None:
    """Wait for the usage snapshot the app takes when it starts, so that a test's own
    `refresh_usage` cannot be overwritten by it."""
    for _ in range(200):
        if (await read_usage(client.app[DATABASE], PageSpec(1, 1), False)).registry:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("no storage usage snapshot after 10 s")
