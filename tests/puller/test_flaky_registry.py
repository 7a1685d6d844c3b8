"""Downloads survive a flaky registry: 503 and 429 are retried, and a blob whose connection
drops half-way is resumed with a Range request, not downloaded again."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.puller.trees import scan_tree
from tests.support import images as img
from tests.support.server import RunningServer, berth_executable

pytestmark = pytest.mark.e2e

_FORWARDED = (
    "Content-Type",
    "Content-Length",
    "Content-Range",
    "Docker-Content-Digest",
    "WWW-Authenticate",
    "Location",
)


class FlakyProxy:
    """Forwards to `upstream`; the first GET of each blob is cut after half its bytes, and
    the first manifest GET gets a 503 and the second a 429."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.log: list[tuple[str, str, str]] = []  # (method, path, Range)
        self._cut: set[str] = set()
        self._manifest_failures = [503, 429]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.log.append((request.method, request.path, request.headers.get("Range", "")))
        if "/manifests/" in request.path and self._manifest_failures:
            return web.Response(status=self._manifest_failures.pop(0), headers={"Retry-After": "0"})
        headers = {k: v for k, v in request.headers.items() if k in ("Accept", "Range")}
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method,
                self.upstream + request.path_qs,
                headers=headers,
                allow_redirects=True,
            ) as upstream,
        ):
            body = await upstream.read()
            resp = web.StreamResponse(
                status=upstream.status,
                headers={k: v for k, v in upstream.headers.items() if k in _FORWARDED},
            )
            cut = "/blobs/" in request.path and request.path not in self._cut and len(body) > 1000
            await resp.prepare(request)
            if cut:
                self._cut.add(request.path)
                await resp.write(body[: len(body) // 2])
                assert request.transport is not None
                request.transport.close()
                return resp
            await resp.write(body)
            await resp.write_eof()
            return resp


async def test_resume_and_retry(
    registry: RunningServer, tmp_path: Path, aiohttp_server: Any
) -> None:
    payload = os.urandom(2 * 1024 * 1024)
    layers = [
        img.build_layer([img.file("random.bin", payload)], "gzip"),
        img.build_layer([img.file("small", os.urandom(5000))], "zstd"),
    ]
    image = img.build_image(layers)
    await asyncio.to_thread(img.push_image, registry.url, "puller/flaky", "v1", image)
    proxy = FlakyProxy(registry.url)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    server = await aiohttp_server(app)
    root = tmp_path / "state"

    process = await asyncio.create_subprocess_exec(
        berth_executable(),
        "pull",
        "--root",
        str(root),
        f"127.0.0.1:{server.port}/puller/flaky:v1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()

    assert process.returncode == 0, err.decode()
    assert f"Digest: {image.digest}" in out.decode()
    assert "retrying at" in out.decode()
    for layer in layers:
        path = f"/v2/puller/flaky/blobs/{layer.digest}"
        gets = [r for m, p, r in proxy.log if m == "GET" and p == path]
        assert gets[0] == ""
        assert len(gets) == 2
        assert gets[1].startswith("bytes=")
        assert gets[1].endswith("-")
        assert 0 < int(gets[1][6:-1]) <= len(layer.data) // 2  # resumed, not restarted
    manifest_gets = [p for m, p, _ in proxy.log if "/manifests/" in p]
    assert len(manifest_gets) == 3  # 503, 429, then the manifest
    blobs = {p.name for p in (root / "content" / "blobs").rglob("*") if p.is_file()}
    assert {layer.digest.split(":")[1] for layer in layers} <= blobs
    unpacked = [
        scan_tree(p / "fs") for p in (root / "snapshots").iterdir() if not p.name.startswith(".")
    ]
    assert sorted(t["random.bin"].size for t in unpacked if "random.bin" in t) == [len(payload)]


class CountingProxy:
    """Forwards to `upstream`, holding each blob GET a moment, and counts how many are in
    flight at once."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.in_flight = 0
        self.most = 0
        self.blob_gets = 0

    async def handle(self, request: web.Request) -> web.Response:
        is_blob = "/blobs/" in request.path
        if is_blob:
            self.blob_gets += 1
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        try:
            if is_blob:
                await asyncio.sleep(0.3)
            headers = {k: v for k, v in request.headers.items() if k in ("Accept", "Range")}
            async with (
                aiohttp.ClientSession() as session,
                session.request(
                    request.method, self.upstream + request.path_qs, headers=headers
                ) as upstream,
            ):
                return web.Response(
                    status=upstream.status,
                    body=await upstream.read(),
                    headers={
                        k: v
                        for k, v in upstream.headers.items()
                        if k in _FORWARDED and k != "Content-Length"
                    },
                )
        finally:
            if is_blob:
                self.in_flight -= 1


async def test_layer_downloads_run_concurrently_and_bounded(
    registry: RunningServer, tmp_path: Path, aiohttp_server: Any
) -> None:
    layers = [img.build_layer([img.file(f"f{i}", os.urandom(1000))]) for i in range(7)]
    image = img.build_image(layers)
    await asyncio.to_thread(img.push_image, registry.url, "puller/wide", "v1", image)
    proxy = CountingProxy(registry.url)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    server = await aiohttp_server(app)

    process = await asyncio.create_subprocess_exec(
        berth_executable(),
        "pull",
        "--root",
        str(tmp_path / "state"),
        f"127.0.0.1:{server.port}/puller/wide:v1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()

    assert process.returncode == 0, err.decode()
    assert proxy.blob_gets == 8  # the config, then 7 layers
    assert proxy.most == 3  # three at a time: concurrent, and bounded
