"""registry_client.upload against `berth serve` and CNCF Distribution: HEAD, chunked and
monolithic uploads streamed from a ranged reader, cross-repository mounts, manifest PUTs.
The requests are watched with aiohttp's own tracing on the wire."""

from __future__ import annotations

import hashlib
import os
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from blobstore import Digest
from registry_client.client import RegistryClient
from registry_client.upload import blob_exists, mount_blob, put_manifest, upload_blob
from tests.support import images as img
from tests.support.server import RunningServer, running

MIB = 1024 * 1024


@pytest.fixture(scope="module", params=["berth", "distribution"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """`berth serve`, then CNCF Distribution."""
    with running(
        request.param, tmp_path_factory.mktemp(f"upload-{request.param}") / "data"
    ) as server:
        yield server


def _reader(blob: bytes, reads: list[tuple[int, int]]) -> Any:
    def read(start: int, end: int) -> AsyncIterator[bytes]:
        reads.append((start, end))

        async def stream() -> AsyncIterator[bytes]:
            for offset in range(start, end, 100_000):
                yield blob[offset : min(offset + 100_000, end)]

        return stream()

    return read


def _get(server: RunningServer, path: str) -> bytes:
    request = urllib.request.Request(f"{server.url}{path}", headers={"Accept": img.OCI_MANIFEST})
    with urllib.request.urlopen(request, timeout=30) as resp:
        return bytes(resp.read())


async def test_chunked_and_monolithic_uploads_mounts_and_manifests(
    server: RunningServer, tmp_path: Path
) -> None:
    sent: list[tuple[str, str, dict[str, str]]] = []

    async def on_request_end(
        session: object, context: SimpleNamespace, params: aiohttp.TraceRequestEndParams
    ) -> None:
        sent.append((params.method, params.url.path, dict(params.headers)))

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(on_request_end)
    big = os.urandom(int(2.5 * MIB))
    small = b"a small blob"
    big_digest = Digest.parse("sha256:" + hashlib.sha256(big).hexdigest())
    small_digest = Digest.parse("sha256:" + hashlib.sha256(small).hexdigest())
    reads: list[tuple[int, int]] = []
    progress: list[int] = []
    repo = f"upload/{server.kind}-first"

    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        client = RegistryClient(session, server.host, plain_http=True)
        assert not await blob_exists(client, repo, big_digest)
        sent.clear()
        await upload_blob(
            client, repo, big_digest, len(big), _reader(big, reads),
            chunk_size=MIB, progress=progress.append,
        )  # fmt: skip
        assert [(method, path.endswith("/")) for method, path, _ in sent] == [
            ("POST", True),
            ("PATCH", False),
            ("PATCH", False),
            ("PATCH", False),
            ("PUT", False),
        ]
        patches = [headers for method, _, headers in sent if method == "PATCH"]
        assert [h["Content-Range"] for h in patches] == [
            f"0-{MIB - 1}",
            f"{MIB}-{2 * MIB - 1}",
            f"{2 * MIB}-{len(big) - 1}",
        ]
        assert all("Transfer-Encoding" not in h for h in patches)  # a length, not chunked
        assert reads == [(0, MIB), (MIB, 2 * MIB), (2 * MIB, len(big))]
        assert progress[-1] == len(big)
        assert progress == sorted(progress)
        assert await blob_exists(client, repo, big_digest)
        assert _get(server, f"/v2/{repo}/blobs/{big_digest}") == big

        other = f"upload/{server.kind}-second"
        assert await mount_blob(client, other, big_digest, repo) is None
        assert await blob_exists(client, other, big_digest)

        # the source lacks the blob: the registry opens an upload instead, which is used
        location = await mount_blob(client, other, small_digest, f"upload/{server.kind}-none")
        assert location is not None
        sent.clear()
        await upload_blob(
            client, other, small_digest, len(small), _reader(small, []), location=location
        )
        assert [method for method, _, _ in sent] == ["PUT"]  # one monolithic PUT
        assert _get(server, f"/v2/{other}/blobs/{small_digest}") == small

        image = img.build_image([img.build_layer([img.file("f", b"x")])])
        for blob in image.blobs():
            digest = Digest.parse(img.sha256(blob))
            await upload_blob(client, other, digest, len(blob), _reader(blob, []))
        digest = await put_manifest(client, other, "v1", image.manifest, image.media_type)
        assert str(digest) == image.digest
        assert _get(server, f"/v2/{other}/manifests/{image.digest}") == image.manifest


class AnswerLosingProxy:
    """Forwards to `upstream`, but the answer to the first PATCH is replaced by a 502 after
    the registry took the chunk: the client must learn where the upload stands."""

    def __init__(self, upstream: RunningServer) -> None:
        self.upstream = upstream
        self.log: list[tuple[str, int]] = []  # (method, status sent back)
        self.lost = False

    async def handle(self, request: web.Request) -> web.Response:
        headers = {
            k: v
            for k, v in request.headers.items()
            if k in ("Accept", "Content-Type", "Content-Range", "Authorization")
        }
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method,
                self.upstream.url + request.path_qs,
                headers=headers,
                data=await request.read(),
                allow_redirects=False,
            ) as upstream,
        ):
            body = await upstream.read()
            forwarded = {
                k: v.replace(self.upstream.host, request.host)
                for k, v in upstream.headers.items()
                if k in ("Location", "Range", "Docker-Content-Digest", "Docker-Upload-UUID")
            }
        if request.method == "PATCH" and not self.lost:
            self.lost = True
            self.log.append((request.method, 502))
            return web.Response(status=502, text="upstream answer lost")
        self.log.append((request.method, upstream.status))
        return web.Response(status=upstream.status, body=body, headers=forwarded)


async def test_a_patch_whose_answer_was_lost_continues_where_the_upload_stands(
    server: RunningServer, aiohttp_server: Any
) -> None:
    proxy = AnswerLosingProxy(server)
    app = web.Application(client_max_size=8 * MIB)
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    front = await aiohttp_server(app)
    blob = os.urandom(3 * MIB)
    digest = Digest.parse("sha256:" + hashlib.sha256(blob).hexdigest())
    reads: list[tuple[int, int]] = []
    repo = f"upload/{server.kind}-lost"
    async with aiohttp.ClientSession() as session:
        client = RegistryClient(session, f"127.0.0.1:{front.port}", plain_http=True)
        await upload_blob(client, repo, digest, len(blob), _reader(blob, reads), chunk_size=MIB)
    # the first chunk was sent twice (the 502 is retried as is) and refused: Berth says
    # where the upload stands (416, then 204 with its Range) and the rest follows once;
    # Distribution's Location carries a state gone stale (404), so the upload starts over
    methods = [method for method, _ in proxy.log]
    if server.kind == "berth":
        assert methods == ["POST", "PATCH", "PATCH", "GET", "PATCH", "PATCH", "PUT"]
        assert [status for _, status in proxy.log][1:4] == [502, 416, 204]
        assert reads == [(0, MIB), (0, MIB), (MIB, 2 * MIB), (2 * MIB, 3 * MIB)]
    else:
        assert methods == [
            "POST",
            "PATCH",
            "PATCH",
            "GET",
            "POST",
            "PATCH",
            "PATCH",
            "PATCH",
            "PUT",
        ]
        assert [status for _, status in proxy.log][1:4] == [502, 404, 404]
        assert reads == [(0, MIB), (0, MIB), (0, MIB), (MIB, 2 * MIB), (2 * MIB, 3 * MIB)]
    assert _get(server, f"/v2/{repo}/blobs/{digest}") == blob
