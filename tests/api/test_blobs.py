"""Blob GET/HEAD (Range, 206, 416) and DELETE."""

from __future__ import annotations

import io

import pytest

from tests.api.oci import Client, digest_of, error_code, push_blob

DATA = bytes(range(256)) * 40


async def test_get_and_head_a_blob(client: Client) -> None:
    digest = await push_blob(client, "a/b", DATA)
    response = await client.get(f"/v2/a/b/blobs/{digest}")
    assert response.status == 200
    assert await response.read() == DATA
    assert response.headers["Docker-Content-Digest"] == digest
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["ETag"]
    head = await client.head(f"/v2/a/b/blobs/{digest}")
    assert head.status == 200
    assert head.headers["Content-Length"] == str(len(DATA))
    assert head.headers["Docker-Content-Digest"] == digest
    assert await head.read() == b""


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=0-9", 0, 10), ("bytes=100-", 100, len(DATA)), ("bytes=-5", len(DATA) - 5, len(DATA))],
)
async def test_range_gives_206(client: Client, header: str, start: int, end: int) -> None:
    digest = await push_blob(client, "r", DATA)
    response = await client.get(f"/v2/r/blobs/{digest}", headers={"Range": header})
    assert response.status == 206
    assert await response.read() == DATA[start:end]
    assert response.headers["Content-Range"] == f"bytes {start}-{end - 1}/{len(DATA)}"


async def test_unsatisfiable_range_gives_416(client: Client) -> None:
    digest = await push_blob(client, "r", DATA)
    response = await client.get(
        f"/v2/r/blobs/{digest}", headers={"Range": f"bytes={len(DATA) + 10}-"}
    )
    assert response.status == 416
    assert response.headers["Content-Range"] == f"bytes */{len(DATA)}"


async def test_unknown_blob_is_blob_unknown(client: Client) -> None:
    await push_blob(client, "known", b"x")
    response = await client.get(f"/v2/known/blobs/{digest_of(b'never pushed')}")
    assert response.status == 404
    assert await error_code(response) == "BLOB_UNKNOWN"
    head = await client.head(f"/v2/known/blobs/{digest_of(b'never pushed')}")
    assert head.status == 404


async def test_blob_is_visible_only_where_linked(client: Client) -> None:
    digest = await push_blob(client, "one", DATA)
    response = await client.get(f"/v2/two/blobs/{digest}")
    assert response.status == 404
    assert await error_code(response) == "BLOB_UNKNOWN"


@pytest.mark.parametrize("bad", ["sha256:abc", "md5:" + "0" * 32, "nonsense", "sha256:" + "G" * 64])
async def test_malformed_digest_is_digest_invalid(client: Client, bad: str) -> None:
    response = await client.get(f"/v2/repo/blobs/{bad}")
    assert response.status == 400
    assert await error_code(response) == "DIGEST_INVALID"


async def test_delete_unlinks_the_blob(client: Client) -> None:
    digest = await push_blob(client, "del", DATA)
    response = await client.delete(f"/v2/del/blobs/{digest}")
    assert response.status == 202
    assert (await client.get(f"/v2/del/blobs/{digest}")).status == 404
    again = await client.delete(f"/v2/del/blobs/{digest}")
    assert again.status == 404
    assert await error_code(again) == "BLOB_UNKNOWN"


async def test_delete_in_one_repository_keeps_the_other(client: Client) -> None:
    digest = await push_blob(client, "keep", DATA)
    await push_blob(client, "drop", DATA)
    assert (await client.delete(f"/v2/drop/blobs/{digest}")).status == 202
    response = await client.get(f"/v2/keep/blobs/{digest}")
    assert response.status == 200
    assert await response.read() == DATA


async def test_delete_disabled_is_405_unsupported(client_no_delete: Client) -> None:
    digest = await push_blob(client_no_delete, "nodel", DATA)
    response = await client_no_delete.delete(f"/v2/nodel/blobs/{digest}")
    assert response.status == 405
    assert await error_code(response) == "UNSUPPORTED"
    assert (await client_no_delete.get(f"/v2/nodel/blobs/{digest}")).status == 200


@pytest.mark.parametrize("name", ["UPPER", "a//b", "-a", "a/", "a..b", "a/-/b"])
async def test_invalid_names_are_name_invalid(client: Client, name: str) -> None:
    response = await client.get(f"/v2/{name}/blobs/{digest_of(b'x')}")
    assert response.status == 400
    assert await error_code(response) == "NAME_INVALID"


@pytest.mark.parametrize("header", ["items=0-10", "bytes=0-1,5-6", "bytes=9-2", "bytes=x-"])
async def test_range_we_do_not_serve_is_ignored(client: Client, header: str) -> None:
    digest = await push_blob(client, "ign", DATA)
    response = await client.get(f"/v2/ign/blobs/{digest}", headers={"Range": header})
    assert response.status == 200
    assert await response.read() == DATA
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


async def test_ignored_range_then_range_on_one_connection(client: Client) -> None:
    digest = await push_blob(client, "keepalive", DATA)
    for header in ("items=0-1", "bytes=0-1,5-6", "bytes=9-0"):
        ignored = await client.get(f"/v2/keepalive/blobs/{digest}", headers={"Range": header})
        assert ignored.status == 200
        assert await ignored.read() == DATA
        ranged = await client.get(f"/v2/keepalive/blobs/{digest}", headers={"Range": "bytes=0-1"})
        assert ranged.status == 206
        assert await ranged.read() == DATA[:2]


async def test_zero_suffix_range_is_416(client: Client) -> None:
    digest = await push_blob(client, "suffix", DATA)
    response = await client.get(f"/v2/suffix/blobs/{digest}", headers={"Range": "bytes=-0"})
    assert response.status == 416
    assert response.headers["Content-Range"] == f"bytes */{len(DATA)}"


async def test_clients_leaving_mid_download_do_not_disturb_others(client: Client) -> None:
    """The body goes out by sendfile from a thread; a client that leaves must cost nothing
    but its own connection."""
    import asyncio
    import hashlib

    big = bytes(range(256)) * (64 * 1024 * 4)  # 64 MiB
    response = await client.post(
        f"/v2/dl/blobs/uploads/?digest={digest_of(big)}", data=io.BytesIO(big)
    )
    assert response.status == 201
    assert client.server.port is not None
    for _ in range(5):
        reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
        writer.write(f"GET /v2/dl/blobs/{digest_of(big)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await reader.read(1 << 16)
        writer.transport.abort()
    got = await client.get(f"/v2/dl/blobs/{digest_of(big)}")
    assert got.status == 200
    assert hashlib.sha256(await got.read()).hexdigest() == digest_of(big)[7:]
