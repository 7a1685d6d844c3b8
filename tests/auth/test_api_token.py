"""The registry app with the built-in token service: challenges, tokens, policy, errors."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from registry.auth import jws
from tests.auth.conftest import USERS, AppFactory, basic, bearer, push_image

POLICY: list[dict[str, Any]] = [
    {"users": ["alice"], "repositories": ["team-a/**"], "actions": ["pull", "push", "delete"]},
    {"users": ["puller"], "repositories": ["team-a/**"], "actions": ["pull"]},
    {"users": ["anonymous"], "repositories": ["public/*"], "actions": ["pull"]},
]


@pytest.fixture
async def client(make_client: AppFactory, htpasswd: Path) -> TestClient[Any, Any]:
    return await make_client(
        {
            "htpasswd": {"path": str(htpasswd)},
            "token": {"service": "test-registry", "issuer": "test-issuer"},
            "admins": ["admin"],
            "access": POLICY,
            "ratelimit": {"burst": 3, "per_minute": 1},
        }
    )


async def token(client: TestClient[Any, Any], user: str | None, *scopes: str) -> str:
    headers = basic(user, USERS[user]) if user else {}
    params = [("service", "test-registry"), *(("scope", s) for s in scopes)]
    resp = await client.get("/auth/token", params=params, headers=headers)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["token"] == body["access_token"]
    return str(body["token"])


async def errors(resp: Any) -> list[str]:
    return [e["code"] for e in (await resp.json())["errors"]]


async def test_base_challenges_with_bearer(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/v2/")
    assert resp.status == 401
    host = f"{client.server.host}:{client.server.port}"
    assert resp.headers["WWW-Authenticate"] == (
        f'Bearer realm="http://{host}/auth/token",service="test-registry"'
    )
    assert resp.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert await errors(resp) == ["UNAUTHORIZED"]
    resp = await client.get("/v2/", headers=bearer(await token(client, "alice")))
    assert resp.status == 200


async def test_repository_challenge_names_the_scope(client: TestClient[Any, Any]) -> None:
    resp = await client.post("/v2/team-a/app/blobs/uploads/")
    assert resp.status == 401
    assert 'scope="repository:team-a/app:pull,push"' in resp.headers["WWW-Authenticate"]
    body = await resp.json()
    assert body["errors"][0]["detail"] == [
        {"Type": "repository", "Name": "team-a/app", "Action": "pull"},
        {"Type": "repository", "Name": "team-a/app", "Action": "push"},
    ]
    resp = await client.delete("/v2/team-a/app/manifests/sha256:" + "0" * 64)
    assert 'scope="repository:team-a/app:delete"' in resp.headers["WWW-Authenticate"]
    resp = await client.get("/v2/_catalog")  # anonymous may pull public/*, so may ask
    assert resp.status == 200


async def test_token_grants_the_intersection(client: TestClient[Any, Any]) -> None:
    scopes = (
        "repository:team-a/app:pull,push,delete",
        "repository:other:pull",
        "registry:catalog:*",
    )
    access = jws.decode(await token(client, "puller", *scopes)).claims["access"]
    assert access == [
        {"type": "repository", "name": "team-a/app", "actions": ["pull"]},
        {"type": "registry", "name": "catalog", "actions": ["*"]},
    ]
    claims = jws.decode(await token(client, "alice", *scopes)).claims
    assert claims["sub"] == "alice"
    assert claims["aud"] == "test-registry"
    assert claims["iss"] == "test-issuer"
    assert claims["access"][0]["actions"] == ["delete", "pull", "push"]
    anonymous = jws.decode(
        await token(client, None, "repository:public/x:pull,push", "repository:team-a/app:pull")
    ).claims
    assert anonymous["sub"] == ""
    assert anonymous["access"] == [{"type": "repository", "name": "public/x", "actions": ["pull"]}]
    admin = jws.decode(await token(client, "admin", "repository:any/thing:*")).claims
    assert admin["access"][0]["actions"] == ["delete", "pull", "push"]


async def test_token_endpoint_refuses_bad_credentials(client: TestClient[Any, Any]) -> None:
    resp = await client.get(
        "/auth/token", params={"service": "test-registry"}, headers=basic("alice", "wrong")
    )
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert await errors(resp) == ["UNAUTHORIZED"]
    resp = await client.get("/auth/token", headers=basic("nobody", "x"))
    assert resp.status == 401
    resp = await client.get("/auth/token", headers={"Authorization": "Basic !!!"})
    assert resp.status == 401
    resp = await client.get("/auth/token", params={"service": "elsewhere"})
    assert resp.status == 400
    assert (await resp.json())["error"] == "invalid_request"
    resp = await client.get("/auth/token", params={"scope": "bogus"})
    assert resp.status == 400
    assert (await resp.json())["error"] == "invalid_scope"


async def test_oauth2_password_grant(client: TestClient[Any, Any]) -> None:
    form = {
        "grant_type": "password",
        "username": "puller",
        "password": USERS["puller"],
        "service": "test-registry",
        "client_id": "test",
        "scope": "repository:team-a/app:pull,push",
    }
    resp = await client.post("/auth/token", data=form)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["scope"] == "repository:team-a/app:pull"
    assert jws.decode(body["access_token"]).claims["sub"] == "puller"
    resp = await client.post("/auth/token", data={**form, "password": "wrong"})
    assert resp.status == 401
    resp = await client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": "x"}
    )
    assert resp.status == 400
    assert (await resp.json())["error"] == "unsupported_grant_type"


async def test_push_pull_with_tokens(client: TestClient[Any, Any]) -> None:
    push = bearer(await token(client, "alice", "repository:team-a/app:pull,push"))
    digest = await push_image(client, "team-a/app", "v1", push)
    pull = bearer(await token(client, "puller", "repository:team-a/app:pull"))
    resp = await client.get("/v2/team-a/app/manifests/v1", headers=pull)
    assert resp.status == 200
    assert resp.headers["Docker-Content-Digest"] == digest
    # The pull-only user's token carries pull only, and the policy gives no more: DENIED.
    pull_push = bearer(await token(client, "puller", "repository:team-a/app:pull,push"))
    resp = await client.post("/v2/team-a/app/blobs/uploads/", headers=pull_push)
    assert resp.status == 403
    assert await errors(resp) == ["DENIED"]
    resp = await client.delete(f"/v2/team-a/app/manifests/{digest}", headers=pull_push)
    assert resp.status == 403
    # A token for one repository does not open another.
    resp = await client.get("/v2/team-a/other/tags/list", headers=pull)
    assert resp.status == 401
    assert 'error="insufficient_scope"' in resp.headers["WWW-Authenticate"]


async def test_token_without_the_scope_the_policy_allows_gets_a_challenge(
    client: TestClient[Any, Any],
) -> None:
    """A client that asked for too little is told to fetch a better token (401, not 403)."""
    pull_only = bearer(await token(client, "alice", "repository:team-a/app:pull"))
    resp = await client.post("/v2/team-a/app/blobs/uploads/", headers=pull_only)
    assert resp.status == 401
    assert 'scope="repository:team-a/app:pull,push"' in resp.headers["WWW-Authenticate"]


async def test_push_without_login_is_unauthorized(client: TestClient[Any, Any]) -> None:
    anonymous = bearer(await token(client, None, "repository:team-a/app:pull,push"))
    resp = await client.post("/v2/team-a/app/blobs/uploads/", headers=anonymous)
    assert resp.status == 401
    assert await errors(resp) == ["UNAUTHORIZED"]


async def test_anonymous_pull_where_policy_allows(client: TestClient[Any, Any]) -> None:
    admin = bearer(
        await token(
            client, "admin", "repository:public/app:push,pull", "repository:team-a/app:push,pull"
        )
    )
    digest = await push_image(client, "public/app", "1", admin)
    await push_image(client, "team-a/app", "1", admin)
    resp = await client.get("/v2/public/app/manifests/1")  # no token at all
    assert resp.status == 200
    assert resp.headers["Docker-Content-Digest"] == digest
    anonymous = bearer(await token(client, None, "repository:public/app:pull"))
    assert (await client.get("/v2/public/app/manifests/1", headers=anonymous)).status == 200
    assert (await client.get("/v2/team-a/app/manifests/1")).status == 401
    assert (await client.post("/v2/public/app/blobs/uploads/")).status == 401


async def test_catalog_lists_what_the_caller_may_pull(client: TestClient[Any, Any]) -> None:
    admin = bearer(
        await token(
            client,
            "admin",
            *(f"repository:{r}:push,pull" for r in ("public/a", "team-a/b", "secret/c")),
        )
    )
    for repo in ("public/a", "team-a/b", "secret/c"):
        await push_image(client, repo, "1", admin)

    async def catalog(user: str | None) -> list[str]:
        resp = await client.get(
            "/v2/_catalog", headers=bearer(await token(client, user, "registry:catalog:*"))
        )
        assert resp.status == 200, await resp.text()
        return list((await resp.json())["repositories"])

    assert await catalog("admin") == ["public/a", "secret/c", "team-a/b"]
    assert await catalog("puller") == ["team-a/b"]
    assert await catalog(None) == ["public/a"]


async def test_mount_needs_pull_on_the_source(client: TestClient[Any, Any]) -> None:
    admin = bearer(await token(client, "admin", "repository:secret/src:push,pull"))
    await push_image(client, "secret/src", "1", admin)
    manifest = await (await client.get("/v2/secret/src/manifests/1", headers=admin)).json()
    layer = manifest["layers"][0]["digest"]
    alice = bearer(
        await token(
            client, "alice", "repository:team-a/dst:push,pull", "repository:secret/src:pull"
        )
    )
    resp = await client.post(
        f"/v2/team-a/dst/blobs/uploads/?mount={layer}&from=secret/src", headers=alice
    )
    assert resp.status == 202  # no pull on secret/src: an ordinary upload instead
    assert (await client.head(f"/v2/team-a/dst/blobs/{layer}", headers=alice)).status == 404
    await push_image(
        client,
        "team-a/src",
        "1",
        admin_token := bearer(await token(client, "admin", "repository:team-a/src:push,pull")),
    )
    assert admin_token
    src_layer = (
        await (await client.get("/v2/team-a/src/manifests/1", headers=admin_token)).json()
    )["layers"][0]["digest"]
    alice = bearer(
        await token(
            client, "alice", "repository:team-a/dst:push,pull", "repository:team-a/src:pull"
        )
    )
    resp = await client.post(
        f"/v2/team-a/dst/blobs/uploads/?mount={src_layer}&from=team-a/src", headers=alice
    )
    assert resp.status == 201


@pytest.mark.parametrize("tamper", ["signature", "garbage", "basic"])
async def test_bad_tokens_are_refused(client: TestClient[Any, Any], tamper: str) -> None:
    good = await token(client, "alice", "repository:team-a/app:pull")
    if tamper == "signature":
        head, payload, sig = good.split(".")
        headers = bearer(f"{head}.{payload}.{sig[:-4]}AAAA")
    elif tamper == "garbage":
        headers = bearer("not-a-token")
    else:
        headers = basic("alice", USERS["alice"])  # Basic is not accepted in token mode
    resp = await client.get("/v2/team-a/app/tags/list", headers=headers)
    assert resp.status == 401
    assert await errors(resp) == ["UNAUTHORIZED"]
    assert resp.headers["WWW-Authenticate"].startswith("Bearer realm=")
    if tamper != "basic":
        assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]


async def test_failed_logins_are_rate_limited(client: TestClient[Any, Any]) -> None:
    for _ in range(3):
        resp = await client.get("/auth/token", headers=basic("alice", "guess"))
        assert resp.status == 401
    resp = await client.get("/auth/token", headers=basic("alice", USERS["alice"]))
    assert resp.status == 429  # throttled even with the right password
    assert await errors(resp) == ["TOOMANYREQUESTS"]
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    resp = await client.get("/auth/token")  # anonymous tokens need no login
    assert resp.status == 200


async def test_secrets_never_logged(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    good = await token(client, "alice", "repository:team-a/app:pull")
    await client.get("/auth/token", headers=basic("alice", "my-wrong-secret"))
    await client.get("/v2/team-a/app/tags/list", headers=bearer(good + "x"))
    await client.get("/v2/team-a/app/tags/list", headers=bearer(good))
    text = caplog.text
    assert "failed login" in text  # the event is logged...
    for secret in ("my-wrong-secret", USERS["alice"], good.split(".")[2], "Authorization"):
        assert secret not in text  # ...never the secret
