"""Distribution's htpasswd mode (`auth.scheme: basic`), and trusting an external issuer."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from yarl import URL

from registry.auth import TOKEN_PATH, jws
from registry.auth.keys import key_id, write_certificate
from registry.auth.scope import Access
from registry.auth.tokens import TokenIssuer
from tests.auth.conftest import USERS, AppFactory, basic, bearer, push_image


@pytest.fixture
async def client(make_client: AppFactory, htpasswd: Path) -> TestClient[Any, Any]:
    return await make_client(
        {
            "scheme": "basic",
            "htpasswd": {"realm": "Test Realm", "path": str(htpasswd)},
            "access": [
                {"users": ["*"], "repositories": ["**"], "actions": ["pull"]},
                {"users": ["alice"], "repositories": ["**"], "actions": ["push"]},
                {"users": ["anonymous"], "repositories": ["public/*"], "actions": ["pull"]},
            ],
        }
    )


async def test_basic_challenge_and_login(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/v2/")
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == 'Basic realm="Test Realm"'
    assert (await resp.json())["errors"][0]["code"] == "UNAUTHORIZED"
    assert (await client.get("/v2/", headers=basic("alice", USERS["alice"]))).status == 200
    resp = await client.get("/v2/", headers=basic("alice", "wrong"))
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == 'Basic realm="Test Realm"'
    assert (await client.get("/v2/", headers=bearer("x.y.z"))).status == 401
    assert (await client.get(TOKEN_PATH)).status == 404  # no token service in this mode


async def test_basic_policy(client: TestClient[Any, Any]) -> None:
    digest = await push_image(client, "public/app", "1", basic("alice", USERS["alice"]))
    resp = await client.get("/v2/public/app/manifests/1", headers=basic("puller", USERS["puller"]))
    assert resp.status == 200
    assert resp.headers["Docker-Content-Digest"] == digest
    assert (await client.get("/v2/public/app/manifests/1")).status == 200  # anonymous
    resp = await client.post(
        "/v2/public/app/blobs/uploads/", headers=basic("puller", USERS["puller"])
    )
    assert resp.status == 403
    assert (await resp.json())["errors"][0]["code"] == "DENIED"
    resp = await client.post("/v2/public/app/blobs/uploads/")
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == 'Basic realm="Test Realm"'


async def test_external_issuer(make_client: AppFactory, tmp_path: Path) -> None:
    """docker_auth/GitLab style: the registry only verifies; the realm is elsewhere."""
    issuer_key = ec.generate_private_key(ec.SECP256R1())
    write_certificate(issuer_key, tmp_path / "issuer.crt", "gitlab-issuer")
    client = await make_client(
        {
            "token": {
                "realm": "https://gitlab.example.com/jwt/auth",
                "service": "container_registry",
                "issuer": "gitlab-issuer",
                "rootcertbundle": str(tmp_path / "issuer.crt"),
            }
        }
    )
    resp = await client.get("/v2/group/project/tags/list")
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == (
        'Bearer realm="https://gitlab.example.com/jwt/auth",service="container_registry",'
        'scope="repository:group/project:pull"'
    )
    assert (await client.get(TOKEN_PATH)).status == 404
    external = TokenIssuer(issuer_key, "gitlab-issuer", "container_registry")
    push = bearer(external.issue("dev", [jws_access("group/project", "pull", "push")]).token)
    digest = await push_image(client, "group/project", "1", push)
    pull = bearer(external.issue("ci", [jws_access("group/project", "pull")]).token)
    resp = await client.get("/v2/group/project/manifests/1", headers=pull)
    assert resp.status == 200
    assert resp.headers["Docker-Content-Digest"] == digest
    resp = await client.put("/v2/group/project/manifests/2", headers=pull, data=b"{}")
    assert resp.status == 401  # no policy here: the token decides, and it lacks push
    assert 'error="insufficient_scope"' in resp.headers["WWW-Authenticate"]
    # A token signed by a key the bundle does not hold, even with the right claims.
    rogue = TokenIssuer(
        ec.generate_private_key(ec.SECP256R1()), "gitlab-issuer", "container_registry"
    )
    resp = await client.get(
        "/v2/group/project/manifests/1",
        headers=bearer(rogue.issue("ci", [jws_access("group/project", "pull")]).token),
    )
    assert resp.status == 401
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]
    # An expired one.
    old = external.issue("ci", [jws_access("group/project", "pull")], now=time.time() - 3600)
    resp = await client.get("/v2/group/project/manifests/1", headers=bearer(old.token))
    assert resp.status == 401
    assert "expired" in (await resp.json())["errors"][0]["message"]


def jws_access(name: str, *actions: str) -> Access:
    return Access("repository", name, frozenset(actions))


async def test_signing_key_in_the_database_and_its_certificate_under_data_dir(
    make_client: AppFactory, htpasswd: Path, tmp_path: Path
) -> None:
    client = await make_client({"htpasswd": {"path": str(htpasswd)}})
    assert not (tmp_path / "data" / "auth" / "token-signing-key.pem").exists()
    cert_path = tmp_path / "data" / "auth" / "token-signing-cert.pem"
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    resp = await client.get(TOKEN_PATH, headers=basic("alice", USERS["alice"]))
    header = jws.decode((await resp.json())["token"]).header
    assert header["alg"] == "ES256"
    assert header["kid"] == key_id(cert.public_key())  # type: ignore[arg-type]  # an EC key


async def test_signing_key_at_a_configured_path(
    make_client: AppFactory, htpasswd: Path, tmp_path: Path
) -> None:
    key_path = tmp_path / "keys" / "signing.pem"
    client = await make_client(
        {"htpasswd": {"path": str(htpasswd)}, "token": {"signingkey": str(key_path)}}
    )
    assert (key_path.stat().st_mode & 0o777) == 0o600
    assert key_path.with_name("token-signing-cert.pem").exists()
    resp = await client.get(TOKEN_PATH, headers=basic("alice", USERS["alice"]))
    header = jws.decode((await resp.json())["token"]).header
    key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert header["kid"] == key_id(key.public_key())


async def test_bad_config_fails_app_creation(make_client: AppFactory) -> None:
    with pytest.raises(ValueError, match=r"auth\.scheme"):
        await make_client({"scheme": "magic"})


async def test_encoded_path_tricks_do_not_escape_the_policy(
    make_client: AppFactory, htpasswd: Path
) -> None:
    client = await make_client(
        {
            "scheme": "basic",
            "htpasswd": {"path": str(htpasswd)},
            "access": [
                {"users": ["anonymous"], "repositories": ["public/**"], "actions": ["pull"]},
                {"users": ["alice"], "repositories": ["**"], "actions": ["*"]},
            ],
        }
    )
    await push_image(client, "secret/app", "1", basic("alice", USERS["alice"]))
    for path in (
        "/v2/public/x%2F..%2F..%2Fsecret/app/manifests/1",
        "/v2/public/../secret/app/manifests/1",
        "/v2/public/%2e%2e/secret/app/manifests/1",
    ):
        resp = await client.get(URL(path, encoded=True))
        assert resp.status in (400, 401, 404), path
        assert "errors" in await resp.json()
