"""Auth tried as an attacker would: critical JWS extensions, undecodable Basic credentials,
scopes on names that are not repository names."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric import ec

from registry.auth import jws
from registry.auth.keys import TrustedKeys, key_id
from registry.auth.keystore import load_shared_signing_key
from registry.auth.tokens import InvalidToken, TokenVerifier
from registry.http.keys import CONFIG
from tests.auth.conftest import USERS, AppFactory, basic, bearer


@pytest.fixture
async def token_client(make_client: AppFactory, htpasswd: Path) -> TestClient[Any, Any]:
    return await make_client({"htpasswd": {"path": str(htpasswd)}})


@pytest.fixture
async def basic_client(make_client: AppFactory, htpasswd: Path) -> TestClient[Any, Any]:
    return await make_client({"scheme": "basic", "htpasswd": {"path": str(htpasswd)}})


def _signed(key: ec.EllipticCurvePrivateKey, header: dict[str, Any]) -> str:
    now = int(time.time())
    claims = {
        "iss": "issuer",
        "sub": "alice",
        "aud": "service",
        "exp": now + 300,
        "nbf": now,
        "access": [{"type": "repository", "name": "app", "actions": ["pull"]}],
    }
    return jws.sign({"kid": key_id(key.public_key()), **header}, claims, key)


@pytest.mark.parametrize(
    "crit",
    [["exp"], ["b64"], ["urn:example:unknown"], [], "not-a-list"],
)
def test_token_with_critical_extension_is_refused(crit: object) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    trusted = TrustedKeys()
    trusted.add(key.public_key())
    verifier = TokenVerifier(trusted, "issuer", "service")
    assert verifier.verify(_signed(key, {})).subject == "alice"  # the same token, no crit
    with pytest.raises(InvalidToken, match="critical"):
        verifier.verify(_signed(key, {"crit": crit, "urn:example:unknown": True}))


async def test_crit_token_refused_by_the_registry(token_client: TestClient[Any, Any]) -> None:
    """Signed by the registry's own key, valid in every other way: still refused."""
    resp = await token_client.get(
        "/auth/token",
        params={"scope": "repository:app:pull"},
        headers=basic("alice", USERS["alice"]),
    )
    good = jws.decode((await resp.json())["token"])
    key = load_shared_signing_key(token_client.app[CONFIG].database_url)  # every replica's
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    plain = jws.sign(good.header, good.claims, key)
    resp = await token_client.get("/v2/app/tags/list", headers=bearer(plain))
    assert resp.status == 404  # let in: no such repository
    forged = jws.sign({**good.header, "crit": ["x-berth-unknown"]}, good.claims, key)
    resp = await token_client.get("/v2/app/tags/list", headers=bearer(forged))
    assert resp.status == 401
    body = await resp.json()
    assert body["errors"][0]["code"] == "UNAUTHORIZED"
    assert "critical" in body["errors"][0]["message"]
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]


BAD_BASIC = [
    "Basic !!!not-base64!!!",
    "Basic é-not-ascii",
    "Basic " + "YWxpY2U6/w==",  # base64 of b"alice:\xff": not UTF-8 underneath
    "Basic YWxpY2U",  # truncated padding
    "Basic ",
]


@pytest.mark.parametrize("header", BAD_BASIC)
async def test_undecodable_basic_credentials_are_401(
    basic_client: TestClient[Any, Any], token_client: TestClient[Any, Any], header: str
) -> None:
    resp = await basic_client.get("/v2/", headers={"Authorization": header})
    assert resp.status == 401
    assert (await resp.json())["errors"][0]["code"] == "UNAUTHORIZED"
    assert resp.headers["WWW-Authenticate"].startswith("Basic realm=")
    resp = await token_client.get("/auth/token", headers={"Authorization": header})
    assert resp.status == 401
    assert (await resp.json())["errors"][0]["code"] == "UNAUTHORIZED"


@pytest.mark.parametrize(
    "name",
    ["UPPER/case", "a//b", "../etc", "trailing/", "-leading", "a" * 256, "x/.."],
)
async def test_token_service_refuses_scopes_on_invalid_names(
    token_client: TestClient[Any, Any], name: str
) -> None:
    resp = await token_client.get(
        "/auth/token",
        params={"scope": f"repository:{name}:pull"},
        headers=basic("alice", USERS["alice"]),
    )
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "invalid_scope"
    assert "invalid repository name" in body["error_description"]
    resp = await token_client.post(
        "/auth/token",
        data={
            "grant_type": "password",
            "username": "alice",
            "password": USERS["alice"],
            "scope": f"repository:{name}:pull",
        },
    )
    assert resp.status == 400
    assert (await resp.json())["error"] == "invalid_scope"


async def test_token_service_still_grants_valid_names(token_client: TestClient[Any, Any]) -> None:
    resp = await token_client.get(
        "/auth/token",
        params={"scope": "repository:team/app-1.x__y:pull registry:catalog:*"},
        headers=basic("alice", USERS["alice"]),
    )
    assert resp.status == 200
    access = jws.decode((await resp.json())["token"]).claims["access"]
    assert {"type": "repository", "name": "team/app-1.x__y", "actions": ["pull"]} in access
