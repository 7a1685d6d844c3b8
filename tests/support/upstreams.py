"""Upstream registries for the pull-through cache, started on loopback ports by the tests.

- `dist_upstream`: CNCF Distribution (Debian `docker-registry`), no auth.
- `dist_token_upstream`: Distribution with `auth: token`, its tokens from a `TokenIssuer`
  (tests/support/token_issuer.py) that wants Basic credentials.
- `berth_upstream`: a second `berth serve` with htpasswd users and `scheme: basic`.

Each starts once per session. Seed them with `Upstream.seed(repository, tag, image)` (images
from `marker_image`, built in Python from this machine's /bin/busybox). Distribution writes
an access log line per request: `Upstream.access_log()`, and `blob_fetches()` counts the blob
GETs it served. `start_proxy_berth` starts the Berth under test with a `proxy:` config
section; `concurrent_pulls` runs skopeo copies at once.
"""

from __future__ import annotations

import base64
import os
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml

from tests.support.clients import run, sha256_file
from tests.support.images import (
    Image,
    build_image,
    build_layer,
    directory,
    file,
    push_image,
    sha256,
)
from tests.support.server import RunningServer, start_berth, start_distribution
from tests.support.token_issuer import TokenIssuer

USERNAME = "puller"
PASSWORD = "Upstr3am-pull-pw"
_ACCESS_LINE = re.compile(r'"(GET|HEAD|PUT|POST|PATCH|DELETE) (/v2/\S*) HTTP/[\d.]+" (\d{3}) ')


def marker_image(marker: str) -> Image:
    """A runnable image: /bin/busybox in one layer, /marker (the text `marker`) in a second
    layer of its own, so two images share the busybox layer but never the marker layer.
    Its command prints the marker."""
    busybox = Path("/bin/busybox").read_bytes()
    base = build_layer([directory("bin"), file("bin/busybox", busybox, mode=0o755)])
    return build_image(
        [base, build_layer([file("marker", marker.encode())])],
        fmt="docker",
        config={"Cmd": ["/bin/busybox", "cat", "/marker"]},
    )


def random_image(layers: int, layer_size: int) -> Image:
    """An image of `layers` layers of random bytes (no blob shared with anything)."""
    return build_image(
        [
            build_layer([file(f"random-{n}.bin", os.urandom(layer_size))], compression="")
            for n in range(layers)
        ],
        config={"Labels": {"random": uuid.uuid4().hex}},
    )


@dataclass
class Upstream:
    """A running upstream registry and what a proxy needs to reach it."""

    kind: str  # "distribution" or "berth"
    server: RunningServer
    username: str = ""
    password: str = ""
    seed_headers: Callable[[str], Mapping[str, str]] = field(default=lambda repository: {})

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def host(self) -> str:
        return self.server.host

    def seed(self, repository: str, tag: str, image: Image) -> str:
        """Push `image` as `repository:tag`; returns the manifest digest."""
        return push_image(self.url, repository, tag, image, headers=self.seed_headers(repository))

    def proxy_entry(self, prefix: str, **extra: Any) -> dict[str, Any]:
        """This upstream as one entry of Berth's `proxy.upstreams`."""
        entry: dict[str, Any] = {"prefix": prefix, "remoteurl": self.url}
        if self.username:
            entry.update(username=self.username, password=self.password)
        return {**entry, **extra}

    def access_log(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request Distribution has logged so far."""
        return [
            (m.group(1), m.group(2), int(m.group(3)))
            for m in _ACCESS_LINE.finditer(self.server.log())
        ]

    def blob_fetches(self) -> Counter[str]:
        """Successful blob GETs per digest."""
        counts: Counter[str] = Counter()
        for method, path, status in self.access_log():
            if method == "GET" and "/blobs/sha256:" in path and status == 200:
                counts[path.rsplit("/", 1)[1].split("?")[0]] += 1
        return counts


def concurrent_pulls(source: str, directory: Path, clients: int) -> list[Path]:
    """`clients` skopeo copies of `source` (`docker://...`) at once, each into a `dir:` copy
    under `directory` (blobs kept as fetched, named by their hex); returns the copies."""

    def pull(n: int) -> Path:
        copy = directory / f"pull-{n}"
        run(["skopeo", "copy", "--src-tls-verify=false", source, f"dir:{copy}"])
        return copy

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(pull, range(clients)))


def assert_each_pull_complete_and_fetched_once(
    copies: list[Path], image: Image, upstream: Upstream
) -> None:
    """Every copy holds every blob of `image`, intact; the upstream served each blob once."""
    digests = [sha256(blob) for blob in image.blobs()]
    for copy in copies:
        for digest in digests:
            assert sha256_file(copy / digest.split(":", 1)[1]) == digest
    fetched = upstream.blob_fetches()
    assert {d: fetched[d] for d in digests} == {d: 1 for d in digests}


def write_berth_config(path: Path, **sections: Any) -> Path:
    path.write_text(yaml.safe_dump({"version": "0.1", **sections}))
    return path


def start_proxy_berth(
    base: Path,
    proxy: Mapping[str, Any],
    *,
    workers: int = 2,
    extra: Mapping[str, Any] | None = None,
) -> RunningServer:
    """`berth serve` with `proxy:` set to `proxy` (other config sections from `extra`)."""
    base.mkdir(parents=True, exist_ok=True)
    config = write_berth_config(base / "berth-proxy.yml", proxy=dict(proxy), **dict(extra or {}))
    return start_berth(
        base / "data",
        workers=workers,
        extra_args=["--config", str(config)],
        env={"PROMETHEUS_MULTIPROC_DIR": str(base / "metrics")},
        log_path=base / "berth-proxy.log",
    )


# --- upstreams -----------------------------------------------------------------------------


def start_dist_upstream(base: Path, extra_config: str = "") -> Upstream:
    # Access log lines are written whatever the level; info adds each request's context too.
    server = start_distribution(base / "data", extra_config=extra_config)
    return Upstream("distribution", server)


def start_berth_basic_upstream(base: Path) -> Upstream:
    base.mkdir(parents=True, exist_ok=True)
    htpasswd = base / "htpasswd"
    htpasswd.write_text(
        f"{USERNAME}:{bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()}\n"
    )
    config = write_berth_config(
        base / "berth-upstream.yml",
        auth={
            "scheme": "basic",
            "htpasswd": {"realm": "berth-upstream", "path": str(htpasswd)},
            "access": [{"users": [USERNAME], "repositories": ["**"], "actions": ["*"]}],
        },
    )
    server = start_berth(
        base / "data",
        workers=1,
        extra_args=["--config", str(config)],
        env={"PROMETHEUS_MULTIPROC_DIR": str(base / "metrics")},
        log_path=base / "berth-upstream.log",
    )
    basic = "Basic " + _b64(f"{USERNAME}:{PASSWORD}")
    return Upstream("berth", server, USERNAME, PASSWORD, lambda _repo: {"Authorization": basic})


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture(scope="session")
def dist_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    upstream = start_dist_upstream(tmp_path_factory.mktemp("dist-upstream"))
    try:
        yield upstream
    finally:
        upstream.server.stop()


@pytest.fixture(scope="session")
def token_issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenIssuer]:
    issuer = TokenIssuer(
        tmp_path_factory.mktemp("token-issuer"),
        service="dist-token-upstream",
        username=USERNAME,
        password=PASSWORD,
    ).start()
    try:
        yield issuer
    finally:
        issuer.stop()


@pytest.fixture(scope="session")
def dist_token_upstream(
    tmp_path_factory: pytest.TempPathFactory, token_issuer: TokenIssuer
) -> Iterator[Upstream]:
    server = start_distribution(
        tmp_path_factory.mktemp("dist-token-upstream") / "data",
        extra_config=token_issuer.distribution_auth_config(),
    )
    upstream = Upstream("distribution", server, USERNAME, PASSWORD, token_issuer.push_headers)
    try:
        yield upstream
    finally:
        server.stop()


@pytest.fixture(scope="session")
def berth_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    upstream = start_berth_basic_upstream(tmp_path_factory.mktemp("berth-upstream"))
    try:
        yield upstream
    finally:
        upstream.server.stop()
