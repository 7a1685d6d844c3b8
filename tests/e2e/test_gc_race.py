"""Garbage collection with no grace, in a loop, while eight clients push, delete and re-push.

Clients push images sharing layers the way docker does (HEAD each blob, upload or mount what
is missing, then PUT the manifest), delete some manifests and at once push them again (their
layers were just unreferenced), and pull what they pushed. Meanwhile `berth gc --grace 0s`
runs in a loop, and a second loop runs the same pass in-process, back to back, to race
harder. Afterwards: no 5xx, every refused manifest PUT was MANIFEST_BLOB_UNKNOWN, every
acknowledged tag pulls with verified digests, and after a last pass with no traffic the
storage holds exactly the blobs the remaining manifests reference.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import random
import subprocess
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from registry.blobstores import open_blobstore
from registry.config_load import load_config
from registry.db import Database
from registry.db.models import (
    blob_pins,
    blobs,
    manifest_references,
    manifests,
    repositories,
    repository_blobs,
)
from registry.gc import GCOptions, collect_garbage
from registry.leases import LeaseBusy
from registry.service.upload_locks import UploadLocks
from tests.e2e.conftest import assert_no_traceback
from tests.support.clients import stored_blob_files
from tests.support.seaweedfs import SeaweedFS, berth_env, bucket_contents
from tests.support.server import RunningServer, berth_executable, start_berth

pytestmark = pytest.mark.e2e

CLIENTS = 8
ROUNDS = 12  # images each client pushes
SHARED_LAYERS = 10
ATTEMPTS = 8  # pushes of one image before a client gives up on it
CLI_PASSES = 400  # bounds for the two collector loops
INPROCESS_PASSES = 4000
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclasses.dataclass
class Image:
    repo: str
    tag: str
    config: bytes
    layers: list[bytes]

    @property
    def manifest(self) -> bytes:
        def descriptor(media_type: str, data: bytes) -> dict[str, object]:
            return {"mediaType": media_type, "digest": sha256(data), "size": len(data)}

        return json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": descriptor("application/vnd.oci.image.config.v1+json", self.config),
                "layers": [
                    descriptor("application/vnd.oci.image.layer.v1.tar", layer)
                    for layer in self.layers
                ],
            }
        ).encode()


@dataclasses.dataclass
class Tally:
    requests: int = 0
    server_errors: list[str] = dataclasses.field(default_factory=list)
    refused: int = 0  # manifest PUTs refused with MANIFEST_BLOB_UNKNOWN
    unclean_refusals: list[str] = dataclasses.field(default_factory=list)
    given_up: int = 0
    pushed: int = 0
    deleted: int = 0
    pulled: int = 0
    pull_failures: list[str] = dataclasses.field(default_factory=list)
    expected: dict[tuple[str, str], Image] = dataclasses.field(default_factory=dict)

    def saw(self, method: str, url: str, status: int) -> None:
        self.requests += 1
        if status >= 500:
            self.server_errors.append(f"{method} {url} -> {status}")


class Pusher:
    def __init__(self, session: aiohttp.ClientSession, base: str, tally: Tally) -> None:
        self.session = session
        self.base = base
        self.tally = tally
        self.random = random.Random()

    async def request(
        self, method: str, path: str, **kwargs: object
    ) -> tuple[int, bytes, dict[str, str]]:
        url = path if path.startswith("http") else self.base + path
        async with self.session.request(method, url, **kwargs) as response:  # type: ignore[arg-type]  # aiohttp's keyword arguments
            body = await response.read()
            self.tally.saw(method, url, response.status)
            return response.status, body, dict(response.headers)

    async def push_blob(self, repo: str, data: bytes, mount_from: str | None) -> None:
        digest = sha256(data)
        status, _, _ = await self.request("HEAD", f"/v2/{repo}/blobs/{digest}")
        if status == 200:
            return
        if mount_from is not None:
            status, _, headers = await self.request(
                "POST", f"/v2/{repo}/blobs/uploads/?mount={digest}&from={mount_from}"
            )
            if status == 201:
                return
        elif self.random.random() < 0.5:
            status, body, _ = await self.request(
                "POST", f"/v2/{repo}/blobs/uploads/?digest={digest}", data=data
            )
            assert status == 201, body
            return
        else:
            status, _, headers = await self.request("POST", f"/v2/{repo}/blobs/uploads/")
        assert status == 202, status
        location = headers["Location"]
        status, body, headers = await self.request(
            "PATCH", location, data=data, headers={"Content-Type": "application/octet-stream"}
        )
        assert status == 202, body
        separator = "&" if "?" in headers["Location"] else "?"
        status, body, _ = await self.request(
            "PUT", f"{headers['Location']}{separator}digest={digest}"
        )
        assert status == 201, body

    async def push(self, image: Image, mount_from: str | None) -> bool:
        for _ in range(ATTEMPTS):
            for blob in [image.config, *image.layers]:
                await self.push_blob(image.repo, blob, mount_from)
            status, body, headers = await self.request(
                "PUT",
                f"/v2/{image.repo}/manifests/{image.tag}",
                data=image.manifest,
                headers={"Content-Type": OCI_MANIFEST},
            )
            if status == 201:
                assert headers["Docker-Content-Digest"] == sha256(image.manifest)
                self.tally.pushed += 1
                return True
            if status == 400 and json.loads(body)["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN":
                self.tally.refused += 1
                mount_from = None
                continue
            self.tally.unclean_refusals.append(f"{image.repo}:{image.tag} -> {status} {body!r}")
            return False
        self.tally.given_up += 1
        return False

    async def delete(self, image: Image) -> None:
        status, body, _ = await self.request(
            "DELETE", f"/v2/{image.repo}/manifests/{sha256(image.manifest)}"
        )
        assert status == 202, body
        self.tally.deleted += 1

    async def pull(self, image: Image) -> None:
        """Pull `image` by tag; every byte must match its digest."""
        where = f"{image.repo}:{image.tag}"
        status, body, _ = await self.request(
            "GET", f"/v2/{image.repo}/manifests/{image.tag}", headers={"Accept": OCI_MANIFEST}
        )
        if status != 200 or sha256(body) != sha256(image.manifest):
            self.tally.pull_failures.append(f"{where}: manifest {status}")
            return
        for blob in [image.config, *image.layers]:
            status, data, _ = await self.request("GET", f"/v2/{image.repo}/blobs/{sha256(blob)}")
            if status != 200 or sha256(data) != sha256(blob):
                self.tally.pull_failures.append(f"{where}: blob {sha256(blob)} {status}")
        self.tally.pulled += 1


async def client(number: int, base: str, shared: list[bytes], tally: Tally) -> None:
    async with aiohttp.ClientSession() as session:
        pusher = Pusher(session, base, tally)
        mine: list[Image] = []
        for round_ in range(ROUNDS):
            image = Image(
                repo=f"race/r{(number + round_) % 4}",
                tag=f"c{number}-{round_}",
                config=json.dumps({"client": number, "round": round_}).encode(),
                layers=[*pusher.random.sample(shared, 2), os.urandom(2048 + round_ * 100)],
            )
            mount_from = f"race/r{(number + round_ + 1) % 4}" if round_ % 3 == 0 else None
            if await pusher.push(image, mount_from):
                mine.append(image)
                tally.expected[(image.repo, image.tag)] = image
            if mine and pusher.random.random() < 0.4:
                victim = pusher.random.choice(mine)
                await pusher.delete(victim)
                mine.remove(victim)
                del tally.expected[(victim.repo, victim.tag)]
                if pusher.random.random() < 0.6 and await pusher.push(victim, None):
                    mine.append(victim)
                    tally.expected[(victim.repo, victim.tag)] = victim
            if mine:
                await pusher.pull(pusher.random.choice(mine))


def berth_gc(server: RunningServer, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [berth_executable(), "gc", "--data-dir", str(server.data_dir), "--grace", "0s", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
        check=False,
    )


@dataclasses.dataclass
class Collector:
    passes: int = 0
    busy: int = 0
    blobs_removed: int = 0
    failures: list[str] = dataclasses.field(default_factory=list)


def cli_loop(
    server: RunningServer, env: dict[str, str], stop: threading.Event, out: Collector
) -> None:
    for _ in range(CLI_PASSES):
        if stop.is_set():
            return
        result = berth_gc(server, env)
        if result.returncode == 0:
            out.passes += 1
            out.blobs_removed += json.loads(result.stdout)["removed"]["blobs"]
        elif "another garbage collection is running" in result.stderr:
            out.busy += 1
        else:
            out.failures.append(result.stderr)


def inprocess_loop(
    server: RunningServer, env: dict[str, str], stop: threading.Event, out: Collector
) -> None:
    config = load_config(environ={**os.environ, **env}, overrides={"datadir": server.data_dir})

    async def loop() -> None:
        db = Database(config.database_url)
        locks = UploadLocks(db)
        try:
            async with open_blobstore(config) as store:
                for _ in range(INPROCESS_PASSES):
                    if stop.is_set():
                        return
                    try:
                        options = GCOptions(grace=timedelta(0))
                        report = await collect_garbage(db, store, locks, options)
                    except LeaseBusy:
                        out.busy += 1
                        await asyncio.sleep(0.05)
                        continue
                    out.passes += 1
                    out.blobs_removed += report.blobs
                    await asyncio.sleep(random.uniform(0.05, 0.4))  # leave the CLI loop a chance
        finally:
            await db.dispose()

    try:
        asyncio.run(loop())
    except Exception as exc:  # noqa: BLE001  (reported by the test)
        out.failures.append(repr(exc))


@dataclasses.dataclass
class Storage:
    """Where the blobs go: the data dir, or (marked `s3`) a SeaweedFS bucket."""

    env: dict[str, str]
    seaweedfs: SeaweedFS | None = None
    bucket: str = ""

    async def digests(self, data_dir: Path) -> set[str]:
        if self.seaweedfs is None:
            return {digest for digest, _ in stored_blob_files(data_dir)}
        keys = await bucket_contents(self.seaweedfs, self.bucket)
        prefix = "docker/registry/v2/blobs/"
        assert all(key.startswith(prefix) for key in keys), keys  # no uploads left behind
        return {"sha256:" + key.split("/")[-2] for key in keys}


@pytest.fixture(params=["filesystem", pytest.param("s3", marks=pytest.mark.s3)])
def storage(request: pytest.FixtureRequest) -> Storage:
    if request.param == "filesystem":
        return Storage({})
    seaweedfs: SeaweedFS = request.getfixturevalue("seaweedfs")
    bucket: str = request.getfixturevalue("s3_bucket")
    return Storage(berth_env(seaweedfs, bucket, redirect=False), seaweedfs, bucket)


@pytest.fixture
def registry(tmp_path: Path, database_url: str, storage: Storage) -> Iterator[RunningServer]:
    env = {"BERTH_DATABASE_URL": database_url, **storage.env}
    server = start_berth(tmp_path / "registry-data", workers=2, env=env)
    try:
        yield server
    finally:
        server.stop()
    assert_no_traceback(server)


async def stored_state(
    url: str,
) -> tuple[set[str], set[str], set[tuple[str, str]], set[tuple[str, str]], int, int]:
    """Referenced blobs, blob rows, links, links the manifests need, `deleting` rows, pins."""
    db = Database(url)
    try:
        async with db.read() as conn:
            referenced = set(
                (
                    await conn.execute(
                        select(manifest_references.c.digest).where(
                            manifest_references.c.kind.in_(["config", "layer"])
                        )
                    )
                ).scalars()
            )
            rows = set((await conn.execute(select(blobs.c.digest))).scalars())
            links = {
                (r.name, r.digest)
                for r in await conn.execute(
                    select(repositories.c.name, repository_blobs.c.digest).join(
                        repositories, repositories.c.id == repository_blobs.c.repository_id
                    )
                )
            }
            needed = {
                (r.name, r.digest)
                for r in await conn.execute(
                    select(repositories.c.name, manifest_references.c.digest)
                    .join(manifests, manifests.c.id == manifest_references.c.manifest_id)
                    .join(repositories, repositories.c.id == manifests.c.repository_id)
                    .where(manifest_references.c.kind.in_(["config", "layer"]))
                )
            }
            deleting = len(
                (await conn.execute(select(blobs.c.digest).where(blobs.c.state != "live"))).all()
            )
            pins = len((await conn.execute(select(blob_pins.c.digest))).all())
    finally:
        await db.dispose()
    return referenced, rows, links, needed, deleting, pins


async def test_gc_without_grace_never_loses_or_corrupts_a_push(
    registry: RunningServer, database_url: str, storage: Storage
) -> None:
    env = {"BERTH_DATABASE_URL": database_url, **storage.env}
    shared = [os.urandom(4096 + i) for i in range(SHARED_LAYERS)]
    tally = Tally()
    stop = threading.Event()
    cli, inprocess = Collector(), Collector()
    loops = [
        threading.Thread(target=cli_loop, args=(registry, env, stop, cli)),
        threading.Thread(target=inprocess_loop, args=(registry, env, stop, inprocess)),
    ]
    for thread in loops:
        thread.start()
    try:
        await asyncio.gather(*(client(n, registry.url, shared, tally) for n in range(CLIENTS)))
    finally:
        stop.set()
        for thread in loops:
            thread.join(timeout=300)

    print(
        f"\n{tally.requests} requests, {tally.pushed} manifests pushed, {tally.refused} refused "
        f"(MANIFEST_BLOB_UNKNOWN), {tally.given_up} given up, {tally.deleted} deleted, "
        f"{tally.pulled} pulls; gc passes: {cli.passes} berth gc + {inprocess.passes} "
        f"in-process ({cli.busy + inprocess.busy} found another running), "
        f"{cli.blobs_removed + inprocess.blobs_removed} blobs removed"
    )
    assert tally.server_errors == []
    assert tally.unclean_refusals == []
    assert tally.pull_failures == []
    assert cli.failures == []
    assert inprocess.failures == []
    assert cli.passes > 0
    assert inprocess.passes > 0
    assert cli.blobs_removed + inprocess.blobs_removed > 0

    final = berth_gc(registry, env)
    assert final.returncode == 0, final.stderr
    async with aiohttp.ClientSession() as session:
        checker = Pusher(session, registry.url, tally)
        for image in tally.expected.values():
            await checker.pull(image)
    assert tally.pull_failures == [], "lost or corrupt after the last pass"

    referenced, rows, links, needed, deleting, pins = await stored_state(database_url)
    stored = await storage.digests(registry.data_dir)
    assert stored == referenced
    assert rows == referenced
    assert links == needed
    assert (deleting, pins) == (0, 0)
    expected_blobs = {
        sha256(b) for image in tally.expected.values() for b in [image.config, *image.layers]
    }
    assert expected_blobs <= stored
