"""The pull-through cache's cost: pulls through Berth's proxy beside pulls straight from the
upstream, a CNCF Distribution (`python -m bench --workload pull-through`).

Each run starts a fresh Distribution (the upstream) and a fresh Berth whose `up/` prefix
fetches from it, seeds four images of random layers into the upstream (so nothing is cached
anywhere), then times, for an HTTP client (manifest, then the blobs three at a time, as dockerd
fetches them) and for `docker pull`:

- first pull: image B through Berth, uncached (Berth fetches, stores and streams it), beside
  image A straight from Distribution, A's first pull too;
- cached pull: B again through Berth, now from its cache, beside A again from Distribution;
- 8 concurrent first pulls of one uncached image through Berth (one upstream fetch per blob,
  streamed to all eight) beside 8 concurrent pulls of another straight from Distribution.

The report's "Berth" column is the pull through the proxy, "Distribution" the direct pull;
the ratio is proxy time over direct time (lower is better, 1.0x is no overhead).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench import http_load as h
from bench import servers
from bench.report import Metric
from tests.support.images import Image, build_image, build_layer, file, push_image

MiB = 1 << 20
PREFIX = "up"
ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)

METRICS = [
    Metric("http_pull_first_s", "first pull (HTTP): via proxy vs direct", "s", False, None),
    Metric("http_pull_cached_s", "cached pull (HTTP): via proxy vs direct", "s", False, None),
    Metric("http_pull_first_x8_s", "8 concurrent first pulls (HTTP)", "s", False, None),
    Metric("docker_pull_first_s", "first docker pull: via proxy vs direct", "s", False, None),
    Metric("docker_pull_cached_s", "cached docker pull: via proxy vs direct", "s", False, None),
]
COLUMNS = ("Berth proxy", "direct")


@dataclass(frozen=True)
class PullSizes:
    layers: int = 4
    layer_size: int = 16 * MiB

    @classmethod
    def quick(cls) -> PullSizes:
        return cls(layers=4, layer_size=4 * MiB)

    @property
    def total_mib(self) -> float:
        return self.layers * self.layer_size / MiB


def _image(sizes: PullSizes) -> Image:
    """Uncompressed docker layers of random bytes: no blob shared, nothing to compress."""
    layers = [
        build_layer([file(f"payload-{n}.bin", os.urandom(sizes.layer_size))], compression="")
        for n in range(sizes.layers)
    ]
    return build_image(layers, fmt="docker", config={"Labels": {"bench": uuid.uuid4().hex}})


async def _http_pull(base: str, repository: str, tag: str) -> float:
    """Manifest by tag, then every blob (three at a time); returns the seconds it took."""
    t0 = time.perf_counter()
    async with h.session(8) as s:
        async with s.get(
            f"{base}/v2/{repository}/manifests/{tag}", headers={"Accept": ACCEPT}
        ) as resp:
            assert resp.status == 200, (resp.status, await resp.text())
            manifest = await resp.json(content_type=None)
        digests = [manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])]
        await h.gather_limited(3, [h.get_blob(s, base, repository, d) for d in digests])
    return time.perf_counter() - t0


async def _http_pulls(base: str, repository: str, tag: str, clients: int) -> float:
    """`clients` pulls of one image at once; returns the seconds until the last finished."""
    t0 = time.perf_counter()
    await asyncio.gather(*(_http_pull(base, repository, tag) for _ in range(clients)))
    return time.perf_counter() - t0


def _docker(*args: str) -> None:
    proc = subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=False, timeout=900
    )
    if proc.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: {proc.returncode}\n{proc.stderr}")


def _docker_pull(ref: str) -> float:
    t0 = time.perf_counter()
    _docker("pull", ref)
    return time.perf_counter() - t0


def _docker_rmi(*refs: str) -> None:
    subprocess.run(["docker", "rmi", "-f", *refs], capture_output=True, check=False, timeout=300)


def _start_pair(workdir: Path) -> tuple[servers.Server, servers.Server]:
    upstream = servers.start("distribution", workdir / "upstream")
    try:
        config = workdir / "berth-proxy.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "version": "0.1",
                    "proxy": {"upstreams": [{"prefix": PREFIX, "remoteurl": upstream.url}]},
                }
            )
        )
        proxy = servers.start("berth", workdir / "proxy", berth_args=["--config", str(config)])
    except BaseException:
        upstream.stop()
        raise
    return upstream, proxy


def one_run(sizes: PullSizes, with_docker: bool) -> tuple[dict[str, float], dict[str, float]]:
    """One run: ({metric: seconds via the proxy}, {metric: seconds direct})."""
    workdir = Path(tempfile.mkdtemp(prefix="berth-bench-pull-through-"))
    upstream, proxy = _start_pair(workdir)
    via: dict[str, float] = {}
    direct: dict[str, float] = {}
    pulled: list[str] = []
    try:
        names = ["http-a", "http-b", "x8-a", "x8-b"]
        names += ["docker-a", "docker-b"] if with_docker else []
        for name in names:
            push_image(upstream.url, f"bench/{name}", "v1", _image(sizes))

        direct["http_pull_first_s"] = asyncio.run(_http_pull(upstream.url, "bench/http-a", "v1"))
        via["http_pull_first_s"] = asyncio.run(
            _http_pull(proxy.url, f"{PREFIX}/bench/http-b", "v1")
        )
        direct["http_pull_cached_s"] = asyncio.run(_http_pull(upstream.url, "bench/http-a", "v1"))
        via["http_pull_cached_s"] = asyncio.run(
            _http_pull(proxy.url, f"{PREFIX}/bench/http-b", "v1")
        )

        direct["http_pull_first_x8_s"] = asyncio.run(
            _http_pulls(upstream.url, "bench/x8-a", "v1", 8)
        )
        via["http_pull_first_x8_s"] = asyncio.run(
            _http_pulls(proxy.url, f"{PREFIX}/bench/x8-b", "v1", 8)
        )

        if with_docker:
            a = f"{upstream.host}/bench/docker-a:v1"
            b = f"{proxy.host}/{PREFIX}/bench/docker-b:v1"
            pulled += [a, b]
            direct["docker_pull_first_s"] = _docker_pull(a)
            via["docker_pull_first_s"] = _docker_pull(b)
            _docker_rmi(a, b)
            direct["docker_pull_cached_s"] = _docker_pull(a)
            via["docker_pull_cached_s"] = _docker_pull(b)
    finally:
        _docker_rmi(*pulled)
        proxy.stop()
        upstream.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return via, direct
