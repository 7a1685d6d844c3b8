"""What replicas on one database share: the token signing key and the failed-login counters,
keyed on the client behind a trusted proxy. Two `create_app`s on one database stand for two
replicas (each with its own engine and connections), on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from registry.app import create_app
from registry.auth import TOKEN_PATH, jws
from registry.auth.keys import key_id
from registry.config import Config, DatabaseConfig, HTTPConfig
from tests.auth.conftest import USERS, basic, bearer

Replica = TestClient[Any, Any]


@pytest.fixture
def auth(htpasswd: Path) -> dict[str, Any]:
    return {
        "htpasswd": {"path": str(htpasswd)},
        "token": {"service": "berth", "issuer": "berth"},
        "ratelimit": {"burst": 2, "per_minute": 1},
    }


@pytest.fixture
def replica(aiohttp_client: Any, tmp_path: Path, database_url: str, auth: dict[str, Any]) -> Any:
    count = 0

    async def start(trustedproxies: tuple[str, ...] = ()) -> Replica:
        nonlocal count
        count += 1
        config = Config(
            datadir=str(tmp_path / f"replica{count}"),  # nothing shared on disk
            database=DatabaseConfig(url=database_url),
            http=HTTPConfig(trustedproxies=trustedproxies),
            auth=auth,
        )
        return await aiohttp_client(create_app(config))  # type: ignore[no-any-return]

    return start


async def _token(client: Replica, user: str) -> str:
    params = {"service": "berth", "scope": "repository:shared/app:pull,push"}
    resp = await client.get(TOKEN_PATH, params=params, headers=basic(user, USERS[user]))
    assert resp.status == 200, await resp.text()
    return str((await resp.json())["token"])


async def test_a_token_from_one_replica_works_on_another(replica: Any) -> None:
    one, two = await replica(), await replica()
    from_one, from_two = await _token(one, "alice"), await _token(two, "alice")
    assert jws.decode(from_one).header["kid"] == jws.decode(from_two).header["kid"]
    for client, token in ((two, from_one), (one, from_two)):
        resp = await client.get("/v2/shared/app/tags/list", headers=bearer(token))
        assert resp.status == 404, await resp.text()  # authorized; the repository is unknown


async def test_a_key_file_from_a_single_host_install_seeds_the_database(
    aiohttp_client: Any, tmp_path: Path, database_url: str, auth: dict[str, Any]
) -> None:
    data = tmp_path / "old"
    key = ec.generate_private_key(ec.SECP256R1())
    (data / "auth").mkdir(parents=True)
    (data / "auth" / "token-signing-key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    config = Config(datadir=str(data), database=DatabaseConfig(url=database_url), auth=auth)
    client = await aiohttp_client(create_app(config))
    assert jws.decode(await _token(client, "alice")).header["kid"] == key_id(key.public_key())


async def test_failed_logins_on_one_replica_throttle_the_other(replica: Any) -> None:
    one, two = await replica(), await replica()
    for client in (one, two):
        resp = await client.get(TOKEN_PATH, headers=basic("alice", "guess"))
        assert resp.status == 401
    resp = await one.get(TOKEN_PATH, headers=basic("alice", USERS["alice"]))
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) >= 1


async def test_clients_behind_a_trusted_proxy_have_their_own_buckets(replica: Any) -> None:
    balancer = await replica(trustedproxies=("127.0.0.0/8",))
    guesser = {"X-Forwarded-For": "203.0.113.7"}
    for _ in range(2):
        resp = await balancer.get(TOKEN_PATH, headers={**basic("alice", "x"), **guesser})
        assert resp.status == 401
    resp = await balancer.get(TOKEN_PATH, headers={**basic("alice", USERS["alice"]), **guesser})
    assert resp.status == 429
    # A spoofed hop left of the real one changes nothing: the proxy vouches for the last.
    spoofed = {"X-Forwarded-For": "198.51.100.1, 203.0.113.7"}
    resp = await balancer.get(TOKEN_PATH, headers={**basic("alice", USERS["alice"]), **spoofed})
    assert resp.status == 429
    other = {"X-Forwarded-For": "203.0.113.8"}
    resp = await balancer.get(TOKEN_PATH, headers={**basic("alice", USERS["alice"]), **other})
    assert resp.status == 200


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(replica: Any) -> None:
    direct = await replica()  # no trusted proxies: the TCP peer is the client
    for n in range(2):
        headers = {**basic("alice", "x"), "X-Forwarded-For": f"203.0.113.{n}"}
        assert (await direct.get(TOKEN_PATH, headers=headers)).status == 401
    fresh_looking = {**basic("alice", USERS["alice"]), "X-Forwarded-For": "203.0.113.99"}
    assert (await direct.get(TOKEN_PATH, headers=fresh_looking)).status == 429
