"""The benchmark workload, run against one server: returns {metric: value}.

Every blob is distinct per run (random bytes), so no server can answer from an earlier upload.
Setup steps (seeding tags, repositories, blobs to read) are not timed.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin

import aiohttp

from bench import http_load as h
from bench.small_uploads import uploads_per_second
from bench.storm import StormResult, storm

MiB = 1 << 20


@dataclass(frozen=True)
class Sizes:
    big: int = 256 * MiB
    chunk: int = 8 * MiB
    concurrent_get: int = 64 * MiB
    concurrent_gets: int = 8
    small: int = 4096
    small_count: int = 3000
    small_concurrency: int = 16
    storm_seconds: float = 10.0
    storm_connections: int = 32
    cpu_pairs: int = 6  # alternated HEAD and GET storms comparing their server CPU
    cpu_pair_seconds: float = 2.0
    tags: int = 500
    repositories: int = 200
    catalog_rounds: int = 50

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            big=32 * MiB,
            concurrent_get=8 * MiB,
            small_count=200,
            storm_seconds=2.0,
            cpu_pairs=2,
            cpu_pair_seconds=1.0,
            tags=100,
            repositories=40,
            catalog_rounds=10,
        )


def _mbps(size: int, seconds: float) -> float:
    return size / MiB / seconds


async def _uploads(base: str, sizes: Sizes, out: dict[str, float]) -> str:
    """Big uploads in one PUT and in chunks; returns the digest of the first, for GETs."""
    async with h.session() as s:
        data = h.random_blob(sizes.big)
        digest = h.digest_of(data)
        t0 = time.perf_counter()
        await h.upload_monolithic(s, base, "bench/big", data, digest)
        out["upload_put_mbps"] = _mbps(sizes.big, time.perf_counter() - t0)

        chunked = h.random_blob(sizes.big)
        chunked_digest = h.digest_of(chunked)
        t0 = time.perf_counter()
        await h.upload_chunked(s, base, "bench/big", chunked, chunked_digest, sizes.chunk)
        out["upload_chunked_mbps"] = _mbps(sizes.big, time.perf_counter() - t0)
    return digest


async def _gets(base: str, digest: str, sizes: Sizes, out: dict[str, float]) -> None:
    async with h.session() as s:
        blobs = [h.random_blob(sizes.concurrent_get) for _ in range(sizes.concurrent_gets)]
        digests = [h.digest_of(b) for b in blobs]
        await h.gather_limited(
            4,
            [
                h.upload_monolithic(s, base, "bench/get", b, d)
                for b, d in zip(blobs, digests, strict=True)
            ],
        )
        del blobs
        await h.get_blob(s, base, "bench/big", digest)  # warm: both servers read from page cache

        t0 = time.perf_counter()
        got = await h.get_blob(s, base, "bench/big", digest)
        out["get_mbps"] = _mbps(got, time.perf_counter() - t0)
        assert got == sizes.big, got

        t0 = time.perf_counter()
        sizes_got = await asyncio.gather(*(h.get_blob(s, base, "bench/get", d) for d in digests))
        out["get_concurrent_mbps"] = _mbps(sum(sizes_got), time.perf_counter() - t0)
        assert sum(sizes_got) == sizes.concurrent_get * sizes.concurrent_gets


async def _seed(base: str, sizes: Sizes) -> tuple[str, str]:
    """One image in bench/app:latest, one repository with `tags` tags, `repositories`
    repositories; returns (app layer digest, tag-list repository)."""
    async with h.session(16) as s:
        manifest, layer = await h.push_small_image(s, base, "bench/app", "latest", os.urandom(4096))
        await h.push_small_image(s, base, "bench/tags", "t0", os.urandom(4096))
        tags_manifest_repo = "bench/tags"
        raw = await _get_manifest_bytes(s, base, tags_manifest_repo, "t0")
        await h.gather_limited(
            16,
            [
                h.put_manifest(s, base, tags_manifest_repo, f"t{i}", raw)
                for i in range(1, sizes.tags)
            ],
        )
        await h.gather_limited(
            16,
            [
                h.push_small_image(s, base, f"bench/repo-{i:04d}", "1", os.urandom(512))
                for i in range(sizes.repositories)
            ],
        )
        assert manifest
    return layer, tags_manifest_repo


async def _get_manifest_bytes(s: aiohttp.ClientSession, base: str, repo: str, ref: str) -> bytes:
    async with s.get(
        f"{base}/v2/{repo}/manifests/{ref}", headers={"Accept": h.OCI_MANIFEST}
    ) as resp:
        assert resp.status == 200, resp.status
        body: bytes = await resp.read()
        return body


async def _catalog_once(s: aiohttp.ClientSession, base: str) -> int:
    """A full catalog listing, following Link pages; returns the repository count."""
    url: str | None = f"{base}/v2/_catalog?n=1000"
    count = 0
    while url:
        async with s.get(url) as resp:
            assert resp.status == 200, resp.status
            count += len((await resp.json())["repositories"])
            link = resp.headers.get("Link")
        url = urljoin(base, link.split(";")[0].strip("<> ")) if link else None
    return count


async def _catalog(base: str, sizes: Sizes, out: dict[str, float]) -> None:
    async with h.session(1) as s:
        assert await _catalog_once(s, base) >= sizes.repositories
        times = []
        for _ in range(sizes.catalog_rounds):
            t0 = time.perf_counter()
            await _catalog_once(s, base)
            times.append((time.perf_counter() - t0) * 1000)
    out["catalog_ms"] = sorted(times)[len(times) // 2]


async def _tags_ok(base: str, repo: str, sizes: Sizes) -> None:
    async with h.session(1) as s, s.get(f"{base}/v2/{repo}/tags/list") as resp:
        tags = (await resp.json())["tags"]
        assert len(tags) == sizes.tags, len(tags)


def run_http(
    base: str, sizes: Sizes, server_cpu: Callable[[], float] = lambda: 0.0
) -> dict[str, float]:
    """The workload; `server_cpu` reads the CPU seconds the server has used so far."""
    out: dict[str, float] = {}
    cpu = server_cpu()
    digest = asyncio.run(_uploads(base, sizes, out))
    out["upload_cpu_s_per_gib"] = (server_cpu() - cpu) / (2 * sizes.big / (1 << 30))
    asyncio.run(_gets(base, digest, sizes, out))
    out["small_uploads_per_s"] = uploads_per_second(
        base, "bench/small", sizes.small, sizes.small_count, sizes.small_concurrency
    )
    layer, tag_repo = asyncio.run(_seed(base, sizes))
    asyncio.run(_tags_ok(base, tag_repo, sizes))

    storms = {
        "manifest_get": (
            f"{base}/v2/bench/app/manifests/latest",
            "GET",
            {"Accept": h.OCI_MANIFEST},
        ),
        "blob_head": (f"{base}/v2/bench/app/blobs/{layer}", "HEAD", {}),
        "tag_list": (f"{base}/v2/{tag_repo}/tags/list", "GET", {}),
    }
    for name, target in storms.items():
        result, cpu = _measured_storm(name, target, sizes, sizes.storm_seconds, server_cpu)
        out[f"{name}_cpu_us"] = cpu * 1e6
        out[f"{name}_rps"] = result.per_second
        out[f"{name}_p99_ms"] = result.p99_ms
    out["head_per_get_cpu"] = _paired_cpu_ratio(
        storms["blob_head"], storms["manifest_get"], sizes, server_cpu
    )
    asyncio.run(_catalog(base, sizes, out))
    return out


def _paired_cpu_ratio(
    first: tuple[str, str, dict[str, str]],
    second: tuple[str, str, dict[str, str]],
    sizes: Sizes,
    server_cpu: Callable[[], float],
) -> float:
    """Server CPU per request of `first` over that of `second`: the median of short storms
    of each, back to back, which comes first alternating. The machine's speed drifts by a
    tenth or more between the ten-second storms above; a pair shares its moment."""
    ratios = []
    for n in range(sizes.cpu_pairs):
        order = (0, 1) if n % 2 == 0 else (1, 0)
        per_request = [0.0, 0.0]
        for i in order:
            url, method, _ = target = (first, second)[i]
            _, per_request[i] = _measured_storm(
                f"{method} {url}", target, sizes, sizes.cpu_pair_seconds, server_cpu
            )
        ratios.append(per_request[0] / per_request[1])
    return statistics.median(ratios)


def _measured_storm(
    label: str,
    target: tuple[str, str, dict[str, str]],
    sizes: Sizes,
    seconds: float,
    server_cpu: Callable[[], float],
) -> tuple[StormResult, float]:
    """A storm of `target` (url, method, headers), every answer a success; with the server's
    CPU seconds per request."""
    url, method, headers = target
    cpu = server_cpu()
    result = storm(
        url, method=method, headers=headers, connections=sizes.storm_connections, seconds=seconds
    )
    assert result.errors == 0, f"{label}: {result.errors} failed or non-2xx answers"
    return result, (server_cpu() - cpu) / max(result.requests, 1)
