"""The UI's queries on PostgreSQL: the same pages, the namespace expression, the pull upsert."""

from __future__ import annotations

import re
from typing import Any

import pytest

from registry import Config, create_app
from registry.http.keys import DATABASE, PULLS
from registry.ui.usage import refresh_usage
from tests.api.conftest import postgres_config, postgres_server
from tests.api.oci import push_image
from tests.ui.conftest import Client, first_snapshot

__all__ = ["postgres_config", "postgres_server"]  # fixtures

pytestmark = pytest.mark.postgres


async def test_pages_on_postgres(aiohttp_client: Any, postgres_config: Config) -> None:
    client: Client = await aiohttp_client(create_app(postgres_config))
    await first_snapshot(client)
    shared = b"shared" * 500
    digest, _ = await push_image(client, "team/a", layer=shared, reference="1")
    await push_image(client, "team/b", layer=shared, reference="1")
    await push_image(client, "solo", reference="1")
    listing = await (await client.get("/ui/?q=team")).text()
    assert re.findall(r'class="repo" href="/ui/r/([^"]+)"', listing) == ["team/a", "team/b"]
    assert (await client.get("/v2/team/a/manifests/1")).status == 200
    await client.app[PULLS].flush()
    repo = await (await client.get("/ui/r/team/a")).text()
    assert "just now" in repo.split('data-tag="1"')[1]
    page = await client.get(f"/ui/r/team/a/-/manifests/{digest}")
    assert page.status == 200
    assert "Layers" in await page.text()
    await refresh_usage(client.app[DATABASE])
    storage = await (await client.get("/ui/storage")).text()
    rows = re.findall(
        r'<a href="/ui/\?q=[^"]+">([^<]+)</a></td><td class="num">(\d+)</td>', storage
    )
    assert sorted(rows) == [("solo", "1"), ("team", "2")]
