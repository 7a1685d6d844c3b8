"""The registry API calls the benchmark makes over aiohttp: blob uploads (one PUT, or PATCH
chunks), blob GETs, manifests and the seed image. Request storms are ab's (bench/storm.py)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import urljoin

import aiohttp

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
READ_CHUNK = 4 << 20
SEND_PIECE = 1 << 20


def session(connections: int = 64) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections, force_close=False),
        timeout=aiohttp.ClientTimeout(total=600),
        read_bufsize=READ_CHUNK,
        auto_decompress=False,
    )


def digest_of(data: bytes | memoryview) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def random_blob(size: int) -> bytes:
    return os.urandom(size)


class RegistryCallFailed(RuntimeError):
    pass


async def _expect(resp: aiohttp.ClientResponse, status: int, what: str) -> None:
    if resp.status != status:
        body = await resp.text(errors="replace")
        raise RegistryCallFailed(f"{what}: {resp.status} (wanted {status}): {body[:500]}")


def _with_digest(base: str, location: str, digest: str) -> str:
    url = urljoin(base + "/", location)
    return f"{url}{'&' if '?' in url else '?'}digest={digest}"


async def start_upload(s: aiohttp.ClientSession, base: str, repo: str) -> str:
    async with s.post(f"{base}/v2/{repo}/blobs/uploads/") as resp:
        await _expect(resp, 202, f"POST {repo} upload")
        return resp.headers["Location"]


async def upload_monolithic(
    s: aiohttp.ClientSession, base: str, repo: str, data: bytes, digest: str
) -> None:
    """POST, then one PUT ?digest= carrying the whole blob with its Content-Length.

    A body bigger than SEND_PIECE is streamed in pieces of the caller's buffer, as clients
    that push from a file do (oras, crane). Handed over whole, aiohttp (on Python 3.11)
    copies it twice into fresh memory: for a 256 MiB blob the client then spent about
    0.9 s of CPU per upload on its own page faults, and the figure measured the client."""
    location = await start_upload(s, base, repo)
    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))}
    body: bytes | AsyncIterator[memoryview] = (
        data if len(data) <= SEND_PIECE else _pieces(memoryview(data), SEND_PIECE)
    )
    async with s.put(_with_digest(base, location, digest), data=body, headers=headers) as resp:
        await _expect(resp, 201, f"PUT {repo} blob")


async def _pieces(data: memoryview, size: int) -> AsyncIterator[memoryview]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def upload_chunked(
    s: aiohttp.ClientSession, base: str, repo: str, data: bytes, digest: str, chunk: int
) -> None:
    """POST, PATCH each `chunk` bytes with Content-Range, then PUT ?digest= with no body."""
    location = await start_upload(s, base, repo)
    view = memoryview(data)
    for start in range(0, len(data), chunk):
        part = view[start : start + chunk]
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{start}-{start + len(part) - 1}",
        }
        async with s.patch(urljoin(base + "/", location), data=part, headers=headers) as resp:
            await _expect(resp, 202, f"PATCH {repo} chunk at {start}")
            location = resp.headers["Location"]
    async with s.put(_with_digest(base, location, digest)) as resp:
        await _expect(resp, 201, f"PUT {repo} chunked blob")


async def get_blob(s: aiohttp.ClientSession, base: str, repo: str, digest: str) -> int:
    """GET a blob, discarding the bytes; returns how many arrived."""
    total = 0
    async with s.get(f"{base}/v2/{repo}/blobs/{digest}") as resp:
        await _expect(resp, 200, f"GET {repo} blob")
        while chunk := await resp.content.readany():
            total += len(chunk)
    return total


async def put_manifest(
    s: aiohttp.ClientSession, base: str, repo: str, ref: str, manifest: bytes
) -> None:
    headers = {"Content-Type": OCI_MANIFEST}
    async with s.put(f"{base}/v2/{repo}/manifests/{ref}", data=manifest, headers=headers) as resp:
        await _expect(resp, 201, f"PUT {repo} manifest {ref}")


async def push_small_image(
    s: aiohttp.ClientSession, base: str, repo: str, tag: str, layer: bytes
) -> tuple[bytes, str]:
    """A one-layer OCI image: uploads config and layer, PUTs the manifest; returns
    (manifest bytes, layer digest)."""
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [digest_of(layer)]},
        }
    ).encode()
    for blob in (config, layer):
        await upload_monolithic(s, base, repo, blob, digest_of(blob))
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest_of(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": digest_of(layer),
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    await put_manifest(s, base, repo, tag, manifest)
    return manifest, digest_of(layer)


async def gather_limited(concurrency: int, jobs: Sequence[Any]) -> list[Any]:
    """Await coroutine objects with at most `concurrency` running at once."""
    sem = asyncio.Semaphore(concurrency)

    async def one(job: Any) -> Any:
        async with sem:
            return await job

    return await asyncio.gather(*(one(j) for j in jobs))
