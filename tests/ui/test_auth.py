"""Logging in to the UI with the API's users and policy; CSRF; sessions any replica accepts."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from registry.auth.keys import write_certificate
from registry.config import HTTPConfig
from registry.ui.session import COOKIE
from tests.api.oci import push_image
from tests.auth.conftest import basic
from tests.ui.conftest import ACCESS, USERS, AppFactory, Client, csrf_of, htpasswd_auth, log_in


@pytest.fixture
async def seeded(make_client: AppFactory) -> Client:
    """An open registry holding public/app:1 and team/app:1 and :2."""
    open_client = await make_client()
    await push_image(open_client, "public/app", reference="1")
    await push_image(open_client, "team/app", reference="1")
    await push_image(open_client, "team/app", layer=b"two", reference="2")
    return open_client


@pytest.fixture
async def guarded(seeded: Client, make_client: AppFactory, htpasswd: Path) -> Client:
    """The same data behind htpasswd auth."""
    return await make_client(auth=htpasswd_auth(htpasswd))


async def test_anonymous_sees_only_what_anonymous_may_pull(guarded: Client) -> None:
    html = await (await guarded.get("/ui/")).text()
    assert "public/app" in html
    assert "team/app" not in html
    assert 'id="login-link"' in html
    assert (await guarded.get("/ui/r/team/app")).status == 404  # existence not revealed
    assert "delete-tag" not in await (await guarded.get("/ui/r/public/app")).text()


async def test_log_in_and_out(guarded: Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = await log_in(guarded, "alice", "not-her-password")
    assert wrong.status == 401
    assert "Incorrect user name or password" in await wrong.text()
    resp = await log_in(guarded, "alice", USERS["alice"])
    assert resp.status == 303
    assert resp.headers["Location"] == "/ui/"
    cookie = resp.cookies[COOKIE]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/ui/"
    html = await (await guarded.get("/ui/")).text()
    assert '<span class="user" id="current-user">alice</span>' in html
    assert "team/app" in html
    assert "public/app" in html
    out = await guarded.post("/ui/logout", data={"csrf": csrf_of(html)}, allow_redirects=False)
    assert out.status == 303
    assert "team/app" not in await (await guarded.get("/ui/")).text()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "alice" in logged  # who logged in and who failed is logged ...
    assert USERS["alice"] not in logged
    assert "not-her-password" not in logged


async def test_no_delete_button_or_delete_without_the_right(guarded: Client) -> None:
    await log_in(guarded, "puller", USERS["puller"])
    page = await (await guarded.get("/ui/r/team/app")).text()
    assert 'data-tag="1"' in page
    assert "delete-tag" not in page
    assert (await guarded.get("/ui/r/team/app/-/tags/1/delete")).status == 403
    refused = await guarded.post("/ui/r/team/app/-/tags/1/delete", data={"csrf": csrf_of(page)})
    assert refused.status == 403
    assert refused.content_type == "text/html"
    tags = await guarded.get("/v2/team/app/tags/list", headers=basic("admin", USERS["admin"]))
    assert (await tags.json())["tags"] == ["1", "2"]


async def test_delete_needs_the_csrf_token_and_same_origin(guarded: Client) -> None:
    await log_in(guarded, "admin", USERS["admin"])
    page = await (await guarded.get("/ui/r/team/app")).text()
    assert "delete-tag" in page
    url = "/ui/r/team/app/-/tags/1/delete"
    for forged in ({}, {"csrf": "guessed"}):
        resp = await guarded.post(url, data=forged)
        assert resp.status == 403
        assert "did not come from this site" in await resp.text()
    cross = await guarded.post(
        url, data={"csrf": csrf_of(page)}, headers={"Origin": "http://evil.test"}
    )
    assert cross.status == 403
    confirm = await guarded.get(url)
    assert "Delete tag 1?" in await confirm.text()
    done = await guarded.post(url, data={"csrf": csrf_of(page)}, allow_redirects=False)
    assert done.status == 303
    assert done.headers["Location"] == "/ui/r/team/app?deleted=1"
    tags = await guarded.get("/v2/team/app/tags/list", headers=basic("admin", USERS["admin"]))
    assert (await tags.json())["tags"] == ["2"]


async def test_delete_a_manifest(seeded: Client) -> None:
    digest = (await seeded.head("/v2/team/app/manifests/2")).headers["Docker-Content-Digest"]
    url = f"/ui/r/team/app/-/manifests/{digest}/delete"
    page = await seeded.get(url)
    assert "with every tag on it" in await page.text()
    done = await seeded.post(url, data={"csrf": csrf_of(await page.text())}, allow_redirects=False)
    assert done.status == 303
    assert (await seeded.get(f"/v2/team/app/manifests/{digest}")).status == 404
    assert (await seeded.get("/v2/team/app/manifests/2")).status == 404


async def test_a_session_is_accepted_by_a_replica_with_the_same_secret(
    seeded: Client, make_client: AppFactory, htpasswd: Path
) -> None:
    http = HTTPConfig(secret="shared between replicas")
    one = await make_client(auth=htpasswd_auth(htpasswd), http=http)
    two = await make_client(auth=htpasswd_auth(htpasswd), http=http)
    other = await make_client(auth=htpasswd_auth(htpasswd), http=HTTPConfig(secret="different"))
    resp = await log_in(one, "alice", USERS["alice"])
    cookie = resp.cookies[COOKIE].value
    for replica, sees in ((two, True), (other, False)):
        html = await (await replica.get("/ui/", cookies={COOKIE: cookie})).text()
        assert ("team/app" in html) is sees
    tampered = cookie[:-4] + ("AAAA" if not cookie.endswith("AAAA") else "BBBB")
    html = await (await two.get("/ui/", cookies={COOKIE: tampered})).text()
    assert "team/app" not in html


async def test_external_issuer_is_read_only_without_login(
    seeded: Client, make_client: AppFactory, tmp_path: Path
) -> None:
    issuer_key = ec.generate_private_key(ec.SECP256R1())
    write_certificate(issuer_key, tmp_path / "issuer.crt", "gitlab-issuer")
    token = {
        "realm": "https://gitlab.example.com/jwt/auth",
        "service": "container_registry",
        "issuer": "gitlab-issuer",
        "rootcertbundle": str(tmp_path / "issuer.crt"),
    }
    client = await make_client(auth={"token": token, "access": ACCESS})
    html = await (await client.get("/ui/")).text()
    assert "public/app" in html
    assert "team/app" not in html
    assert "login" not in html.lower().replace("login-link", "")
    assert (await client.get("/ui/login")).status == 404
    assert "delete-tag" not in await (await client.get("/ui/r/public/app")).text()
