"""Every error is OCI error JSON (unknown routes, wrong methods, 416 included), and every
answer carries the API version header and a `Server` header that names no versions."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp import ClientResponse

from tests.api.oci import Client, push_blob

_CODE = re.compile(r"[A-Z_]+")


async def oci_errors(response: ClientResponse) -> list[dict[str, Any]]:
    """The body parsed as the distribution spec's error envelope, checked field by field."""
    assert response.content_type == "application/json"
    body = await response.json()
    assert isinstance(body, dict)
    assert set(body) == {"errors"}, body
    errors = body["errors"]
    assert isinstance(errors, list)
    assert errors, body
    for error in errors:
        assert set(error) <= {"code", "message", "detail"}, error
        assert _CODE.fullmatch(error["code"]), error
        assert isinstance(error["message"], str)
        assert error["message"], error
    return errors


def assert_registry_headers(response: ClientResponse) -> None:
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    server = response.headers.get("Server", "")
    assert "Python" not in server, server
    assert "aiohttp" not in server, server


@pytest.mark.parametrize(
    "path", ["/v2/r/nothing-here", "/v2/r/blobs", "/nowhere", "/v2/r/manifests/"]
)
async def test_unknown_route_is_oci_404(client: Client, path: str) -> None:
    response = await client.get(path)
    assert response.status == 404
    assert_registry_headers(response)
    [error] = await oci_errors(response)
    assert error["code"] == "NOT_FOUND"
    assert error["detail"] == {"method": "GET", "path": path}


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", "/v2/r/manifests/latest", {"DELETE", "GET", "HEAD", "PUT"}),
        ("PATCH", "/v2/", {"GET", "HEAD"}),
        ("PUT", "/v2/r/tags/list", {"GET"}),
        ("POST", "/v2/r/blobs/sha256:" + "0" * 64, {"DELETE", "GET", "HEAD"}),
    ],
)
async def test_wrong_method_is_oci_405(
    client: Client, method: str, path: str, allowed: set[str]
) -> None:
    response = await client.request(method, path)
    assert response.status == 405
    assert_registry_headers(response)
    assert set(response.headers["Allow"].split(",")) == allowed
    [error] = await oci_errors(response)
    assert error["code"] == "UNSUPPORTED"
    assert set(error["detail"]["allowed"]) == allowed


async def test_unsatisfiable_blob_range_is_oci_416(client: Client) -> None:
    digest = await push_blob(client, "r", b"0123456789")
    response = await client.get(f"/v2/r/blobs/{digest}", headers={"Range": "bytes=50-60"})
    assert response.status == 416
    assert response.headers["Content-Range"] == "bytes */10"
    assert_registry_headers(response)
    [error] = await oci_errors(response)
    assert error["code"] == "RANGE_NOT_SATISFIABLE"
    assert error["detail"] == {"range": "bytes=50-60", "size": 10}


async def test_every_v2_answer_carries_the_headers(client: Client) -> None:
    digest = await push_blob(client, "r", b"abc")
    answers = [
        await client.get("/v2/"),
        await client.head("/v2/"),
        await client.get(f"/v2/r/blobs/{digest}"),
        await client.head(f"/v2/r/blobs/{digest}"),
        await client.get("/v2/r/tags/list"),
        await client.get("/v2/_catalog"),
        await client.post("/v2/r/blobs/uploads/"),
        await client.get("/v2/r/manifests/nope"),
        await client.get("/v2/BAD/tags/list"),
    ]
    assert [a.status for a in answers] == [200, 200, 200, 200, 200, 200, 202, 404, 400]
    for answer in answers:
        assert_registry_headers(answer)
        if answer.status >= 400:
            await oci_errors(answer)
