"""GET /v2/, the API version header everywhere, unknown routes, and non-HTTP input."""

from __future__ import annotations

import asyncio

from tests.api.oci import Client, error_code


async def test_api_root_answers_200_with_version_header(client: Client) -> None:
    response = await client.get("/v2/")
    assert response.status == 200
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert await response.json() == {}


async def test_head_of_api_root(client: Client) -> None:
    response = await client.head("/v2/")
    assert response.status == 200
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


async def test_errors_carry_the_version_header_and_oci_body(client: Client) -> None:
    response = await client.get("/v2/nothing/here/tags/list")
    assert response.status == 404
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert response.headers["Content-Type"].startswith("application/json")
    assert await error_code(response) == "NAME_UNKNOWN"


async def test_unknown_route_is_404_with_version_header(client: Client) -> None:
    response = await client.get("/v3/")
    assert response.status == 404
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


async def test_wrong_method_is_405(client: Client) -> None:
    response = await client.post("/v2/repo/tags/list")
    assert response.status == 405


async def test_tls_client_hello_on_plain_port_is_refused_at_once(client: Client) -> None:
    """docker, podman and skopeo try TLS first; a silent server costs them 10 s per attempt."""
    assert client.server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    writer.write(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64))
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), timeout=2)
    writer.close()
    assert answer.startswith((b"HTTP/1.0 400", b"HTTP/1.1 400"))


async def test_raw_dot_dot_in_a_name_is_name_invalid(client: Client) -> None:
    assert client.server.port is not None
    for path in ("/v2/a/../b/tags/list", "/v2/a/%2e%2e/b/tags/list", "/v2/../v2/b/tags/list"):
        reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=2)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 400"), (path, answer)
        assert b'"NAME_INVALID"' in answer
