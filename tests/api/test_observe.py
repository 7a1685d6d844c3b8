"""Health checks on the main port, the request id, metrics by route template and the access
log, against `create_app` in process."""

from __future__ import annotations

import base64
import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path

import bcrypt
import pytest
from prometheus_client import REGISTRY

from registry import Config, create_app
from registry.config import DatabaseConfig
from registry.logs import JSONFormatter
from tests.api.conftest import ClientFactory
from tests.api.oci import push_image
from tests.auth.conftest import push_image as push_authed


async def test_healthz_and_readyz(aiohttp_client: ClientFactory, config: Config) -> None:
    client = await aiohttp_client(create_app(config))
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}
    response = await client.get("/readyz")
    assert response.status == 200, await response.text()
    assert await response.json() == {}


async def test_readyz_names_the_database_while_it_is_gone(
    aiohttp_client: ClientFactory, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """SQLite's file moved away (PostgreSQL stopped: tests/api/test_operate_postgres.py)."""
    database = tmp_path / "own" / "registry.db"
    database.parent.mkdir()
    shutil.copy(request.getfixturevalue("_sqlite_template"), database)
    config = Config(
        datadir=str(tmp_path / "own"),
        database=DatabaseConfig(url=f"sqlite+aiosqlite:///{database}"),
    )
    client = await aiohttp_client(create_app(config))
    assert (await client.get("/readyz")).status == 200
    moved = database.with_name("moved-away.db")
    database.rename(moved)
    try:
        response = await client.get("/readyz")
        assert response.status == 503
        failures = await response.json()
        assert set(failures) == {"database"}, failures
        assert "unable to open database file" in failures["database"]
        assert not database.exists()  # the probe did not create an empty one
    finally:
        moved.rename(database)
    response = await client.get("/readyz")
    assert response.status == 200, await response.text()


async def test_readyz_names_the_storage_when_it_refuses_writes(
    aiohttp_client: ClientFactory, config: Config
) -> None:
    client = await aiohttp_client(create_app(config))
    ingest = Path(config.datadir) / "ingest"
    assert ingest.is_dir()
    ingest.rename(ingest.with_name("ingest-away"))
    try:
        response = await client.get("/readyz")
        assert response.status == 503
        assert set(await response.json()) == {"storage"}
    finally:
        ingest.with_name("ingest-away").rename(ingest)
    assert (await client.get("/readyz")).status == 200


async def test_probes_need_no_credentials_when_auth_is_on(
    aiohttp_client: ClientFactory, config: Config, tmp_path: Path
) -> None:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"alice:{bcrypt.hashpw(b'pw', bcrypt.gensalt(4)).decode()}\n")
    auth = {"htpasswd": {"realm": "r", "path": str(htpasswd)}}
    client = await aiohttp_client(create_app(replace(config, auth=auth)))
    assert (await client.get("/v2/")).status == 401
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200


async def test_request_id_is_made_or_taken(aiohttp_client: ClientFactory, config: Config) -> None:
    client = await aiohttp_client(create_app(config))
    made = (await client.get("/v2/")).headers["X-Request-Id"]
    assert len(made) == 36  # a UUID
    assert (await client.get("/v2/", headers={"X-Request-Id": "abc-1"})).headers[
        "X-Request-Id"
    ] == "abc-1"
    # Not a header to echo or log as given: replaced.
    sent = "a b <script>" + "x" * 200
    bad = (await client.get("/v2/", headers={"X-Request-Id": sent})).headers["X-Request-Id"]
    assert len(bad) == 36
    missing = await client.get("/v2/no/such/thing/here")
    assert missing.status == 404
    assert missing.headers["X-Request-Id"]


def _count(method: str, route: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "berth_http_requests_total", {"method": method, "route": route, "status": status}
    )
    return value or 0.0


async def test_requests_are_counted_by_route_template(
    aiohttp_client: ClientFactory, config: Config
) -> None:
    client = await aiohttp_client(create_app(config))
    route = "/v2/{name}/manifests/{reference}"
    before_ok, before_missing = _count("GET", route, "200"), _count("GET", route, "404")
    before_other = _count("GET", "other", "404")
    await push_image(client, "metrics/app", reference="v1")
    for _ in range(3):
        assert (await client.get("/v2/metrics/app/manifests/v1")).status == 200
    assert (await client.get("/v2/metrics/app/manifests/nope")).status == 404
    assert (await client.get("/not/a/route")).status == 404
    before_odd = _count("other", "other", "405")
    assert (await client.request("PROPFIND", "/v2/")).status == 405
    assert _count("other", "other", "405") - before_odd == 1  # methods stay a bounded label
    assert _count("GET", route, "200") - before_ok == 3
    assert _count("GET", route, "404") - before_missing == 1
    assert _count("GET", "other", "404") - before_other == 1
    names = {s.labels.get("route") for m in REGISTRY.collect() for s in m.samples}
    assert not any(name and "metrics/app" in name for name in names)


async def test_access_log_lines_are_json_without_secrets(
    aiohttp_client: ClientFactory,
    config: Config,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    password = "s3cret-Pa55word"
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"alice:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()}\n")
    auth = {
        "htpasswd": {"realm": "r", "path": str(htpasswd)},
        "access": [{"users": ["alice"], "repositories": ["**"], "actions": ["pull", "push"]}],
    }
    client = await aiohttp_client(create_app(replace(config, auth=auth)))
    assert (await client.get("/v2/")).status == 401
    credentials = base64.b64encode(f"alice:{password}".encode()).decode()
    caplog.set_level(logging.INFO)
    # The built-in token service: a password to get a token, the token for the API.
    reply = await client.get(
        "/auth/token",
        params={"scope": "repository:logs/app:pull,push"},
        headers={"Authorization": f"Basic {credentials}"},
    )
    assert reply.status == 200, await reply.text()
    token = (await reply.json())["token"]
    headers = {"Authorization": f"Bearer {token}", "X-Request-Id": "rid-7"}
    await push_authed(client, "logs/app", "v1", headers)
    wrong = base64.b64encode(b"alice:not-the-password").decode()
    assert (await client.get("/v2/", headers={"Authorization": f"Basic {wrong}"})).status == 401
    formatter = JSONFormatter({"service": "registry"})
    lines = [formatter.format(record) for record in caplog.records]
    access = [json.loads(line) for line in lines if '"logger": "berth.access"' in line]
    put = [a for a in access if a["method"] == "PUT" and "manifests" in a["route"]]
    assert len(put) == 1, access
    assert put[0]["route"] == "/v2/{name}/manifests/{reference}"
    assert put[0]["repository"] == "logs/app"
    assert put[0]["status"] == 201
    assert put[0]["user"] == "alice"
    assert put[0]["request_id"] == "rid-7"
    assert put[0]["bytes_in"] > 0
    assert put[0]["service"] == "registry"
    assert any(a["status"] == 401 for a in access)
    text = "\n".join(lines)
    for secret in (password, credentials, wrong, "not-the-password", token, token[-20:]):
        assert secret not in text
