"""An HTTP server in front of a real registry that counts the requests it forwards, and on
demand slows blob bytes down or changes one of them: the upstream that is slow, or lies."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Final

import aiohttp
from aiohttp import web

_HOP_BY_HOP: Final = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}
)
CHUNK: Final = 64 * 1024


class Forwarder:
    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.requests: Counter[tuple[str, str]] = Counter()
        self.corrupt_blobs = False  # flip a byte of every blob GET: the digest no longer matches
        self.chunk_delay = 0.0  # seconds between 64 KiB chunks of a blob GET
        self.fail_with: int | None = None  # answer every request with this status instead
        self._session: aiohttp.ClientSession | None = None

    def count(self, method: str, kind: str) -> int:
        """Requests forwarded with `method` whose path holds `/{kind}/` (blobs, manifests)."""
        return sum(
            n for (m, path), n in self.requests.items() if m == method and f"/{kind}/" in path
        )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        app.on_cleanup.append(self._close)
        return app

    async def _close(self, _: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        if self._session is None:
            self._session = aiohttp.ClientSession(auto_decompress=False)
        self.requests[(request.method, request.path)] += 1
        if self.fail_with is not None:
            return web.Response(status=self.fail_with, text="failing on purpose")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        body = await request.read()
        blob_get = request.method == "GET" and "/blobs/sha256:" in request.path
        async with self._session.request(
            request.method,
            self.target + request.path_qs,
            headers=headers,
            data=body or None,
            allow_redirects=False,
        ) as upstream:
            response = web.StreamResponse(status=upstream.status)
            for name, value in upstream.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    response.headers.add(name, value)
            if upstream.content_length is not None:
                response.content_length = upstream.content_length
            await response.prepare(request)
            first = True
            async for chunk in upstream.content.iter_chunked(CHUNK):
                if blob_get and self.corrupt_blobs and first:
                    chunk = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
                first = False
                if blob_get and self.chunk_delay:
                    await asyncio.sleep(self.chunk_delay)
                await response.write(chunk)
            await response.write_eof()
            return response
