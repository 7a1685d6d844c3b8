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
