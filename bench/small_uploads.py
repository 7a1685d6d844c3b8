"""Many small blob uploads (POST, then one PUT ?digest=), over plain HTTP/1.1 connections.

A CI push of many small layers is a storm of two requests per blob. The aiohttp client spent
about 500 µs of CPU per 4 KiB blob on this two-core machine, a quarter of what the faster
server spends: like the storms' Python generator (bench/storm.py), it measured itself. This
client writes each request in one `write` and reads the status line and headers of answers that
carry a Content-Length (both servers' upload answers do), about 140 µs per blob. Anything else
(an answer in chunks, a status other than the one the API specifies) fails the run.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from urllib.parse import urljoin, urlsplit

import uvloop

_HEAD_LIMIT = 64 * 1024


class UploadFailed(RuntimeError):
    pass


def uploads_per_second(base: str, repo: str, size: int, count: int, connections: int) -> float:
    """Upload `count` distinct random blobs of `size` bytes to `repo`, `connections` at a
    time; blobs per second. The blobs and their digests are made before the clock starts."""
    blobs = [os.urandom(size) for _ in range(count)]
    work = [(blob, f"sha256:{hashlib.sha256(blob).hexdigest()}") for blob in blobs]
    return uvloop.run(_upload_all(base, repo, work, connections))


async def _upload_all(
    base: str, repo: str, work: list[tuple[bytes, str]], connections: int
) -> float:
    count = len(work)
    pending = list(reversed(work))
    t0 = time.perf_counter()
    await asyncio.gather(*(_connection(base, repo, pending) for _ in range(connections)))
    return count / (time.perf_counter() - t0)


async def _connection(base: str, repo: str, pending: list[tuple[bytes, str]]) -> None:
    parts = urlsplit(base)
    reader, writer = await asyncio.open_connection(
        parts.hostname, parts.port or 80, limit=_HEAD_LIMIT
    )
    host = parts.netloc.encode()
    post = (
        f"POST /v2/{repo}/blobs/uploads/ HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    try:
        while pending:
            blob, digest = pending.pop()
            writer.write(post)
            location = _header(await _answer(reader, 202, "POST"), b"location")
            url = urlsplit(urljoin(base + "/", location.decode()))
            target = f"{url.path}?{url.query + '&' if url.query else ''}digest={digest}"
            writer.write(
                b"PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (target.encode(), host, len(blob), blob)
            )
            await _answer(reader, 201, "PUT")
    finally:
        writer.close()


async def _answer(reader: asyncio.StreamReader, status: int, what: str) -> dict[bytes, bytes]:
    """The headers of the next answer, its body read and dropped; UploadFailed unless its
    status is `status`."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head[:-4].split(b"\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if b"transfer-encoding" in headers:
        raise UploadFailed(f"{what}: an answer in chunks, which this client does not read")
    length = int(headers.get(b"content-length", b"0"))
    body = await reader.readexactly(length) if length else b""
    got = int(status_line.split(b" ", 2)[1])
    if got != status:
        raise UploadFailed(f"{what}: {got} (wanted {status}): {body[:500]!r}")
    return headers


def _header(headers: dict[bytes, bytes], name: bytes) -> bytes:
    value = headers.get(name)
    if value is None:
        raise UploadFailed(f"no {name.decode()} header")
    return value
