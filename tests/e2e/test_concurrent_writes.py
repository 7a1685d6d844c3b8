"""Two worker processes writing one SQLite database at once, under a storm of small pushes:
every blob, every tag is there afterwards. (A checkpoint thread that once opened and closed the
database's -shm file dropped SQLite's locks in its process, and lost a write now and then.)"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import requests

from tests.e2e.conftest import assert_no_traceback
from tests.support.server import RunningServer, registry_server

pytestmark = pytest.mark.e2e

BLOBS = 600
TAGS = 300
CONCURRENCY = 32
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[RunningServer]:
    with registry_server(tmp_path / "server", workers=2) as server:
        yield server
    assert_no_traceback(server)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def _upload(s: aiohttp.ClientSession, base: str, repo: str, data: bytes) -> str:
    async with s.post(f"{base}/v2/{repo}/blobs/uploads/") as resp:
        assert resp.status == 202, await resp.text()
        location = resp.headers["Location"]
    url = location if location.startswith("http") else base + location
    digest = _digest(data)
    separator = "&" if "?" in url else "?"
    async with s.put(f"{url}{separator}digest={digest}", data=data) as resp:
        assert resp.status == 201, await resp.text()
    return digest


async def _storm(base: str, repo: str) -> tuple[list[str], list[str]]:
    limit = asyncio.Semaphore(CONCURRENCY)
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as s:

        async def upload(data: bytes) -> str:
            async with limit:
                return await _upload(s, base, repo, data)

        async def tag(name: str, manifest: bytes) -> None:
            async with limit:
                headers = {"Content-Type": MANIFEST_TYPE}
                url = f"{base}/v2/{repo}/manifests/{name}"
                async with s.put(url, data=manifest, headers=headers) as resp:
                    assert resp.status == 201, await resp.text()

        config, layer = b"{}", os.urandom(4096)
        manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": await upload(config), "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": await upload(layer), "size": len(layer)}],
        }).encode()  # fmt: skip
        tags = [f"t{i}" for i in range(TAGS)]
        uploads = [upload(os.urandom(4096)) for _ in range(BLOBS)]
        results = await asyncio.gather(*uploads, *(tag(t, manifest) for t in tags))
        return [d for d in results if isinstance(d, str)], tags


async def _missing_blobs(base: str, repo: str, digests: list[str]) -> list[str]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as s:

        async def present(digest: str) -> bool:
            async with s.head(f"{base}/v2/{repo}/blobs/{digest}") as resp:
                return resp.status == 200

        found = await asyncio.gather(*(present(d) for d in digests))
    return [d for d, ok in zip(digests, found, strict=True) if not ok]


def test_a_storm_of_small_pushes_loses_no_blob_and_no_tag(two_workers: RunningServer) -> None:
    repo = "storm/app"
    digests, tags = asyncio.run(_storm(two_workers.url, repo))
    assert len(digests) == BLOBS
    assert asyncio.run(_missing_blobs(two_workers.url, repo, digests)) == []
    listed = requests.get(f"{two_workers.url}/v2/{repo}/tags/list?n=1000", timeout=30)
    assert listed.status_code == 200, listed.text
    assert sorted(listed.json()["tags"]) == sorted(tags)
