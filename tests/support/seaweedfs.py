"""A real S3 server for tests: one SeaweedFS `weed server -s3` per test session, on loopback.

`seaweedfs` (session scope) starts it in a temporary dir on free ports (gRPC ports too),
with telemetry off and the Iceberg/Lance ports disabled, and stops it by PID at the end
(SIGTERM, then SIGKILL: it takes about 15 s to stop on its own). `s3_bucket` gives each test
a fresh bucket, deleted afterwards. Any access key is accepted (no `-s3.config`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import aiohttp
import pytest

from tests.support.server import free_port

ACCESS_KEY = "berth-test"
SECRET_KEY = "berth-test-secret"
REGION = "us-east-1"


@dataclass(frozen=True)
class SeaweedFS:
    s3_port: int
    directory: Path
    pid: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def create_bucket(self, name: str) -> None:
        request = urllib.request.Request(f"{self.endpoint}/{name}", method="PUT")
        with urllib.request.urlopen(request, timeout=30):
            pass

    def delete_bucket(self, name: str) -> None:
        request = urllib.request.Request(f"{self.endpoint}/{name}", method="DELETE")
        with (
            contextlib.suppress(urllib.error.URLError),
            urllib.request.urlopen(request, timeout=30),
        ):
            pass


def berth_env(seaweedfs: SeaweedFS, bucket: str, *, redirect: bool = True) -> dict[str, str]:
    """Environment for `berth serve` to keep its blobs in `bucket` (BERTH_STORAGE_S3_*)."""
    return {
        "BERTH_STORAGE_S3_ACCESSKEY": ACCESS_KEY,
        "BERTH_STORAGE_S3_SECRETKEY": SECRET_KEY,
        "BERTH_STORAGE_S3_REGION": REGION,
        "BERTH_STORAGE_S3_REGIONENDPOINT": seaweedfs.endpoint,
        "BERTH_STORAGE_S3_BUCKET": bucket,
        "BERTH_STORAGE_S3_FORCEPATHSTYLE": "true",
        "BERTH_STORAGE_S3_CHUNKSIZE": str(5 << 20),
        "BERTH_STORAGE_REDIRECT_DISABLE": "false" if redirect else "true",
    }


async def bucket_contents(seaweedfs: SeaweedFS, bucket: str) -> list[str]:
    """Every object key in `bucket`, then `multipart <key>` for every unfinished multipart
    upload (SeaweedFS without `-s3.config` answers unsigned requests)."""
    found: list[str] = []
    async with aiohttp.ClientSession() as session:
        for query, tag, prefix in (("list-type=2", "Key", ""), ("uploads", "Key", "multipart ")):
            async with session.get(f"{seaweedfs.endpoint}/{bucket}?{query}") as response:
                assert response.status == 200, await response.text()
                root = ElementTree.fromstring(await response.read())
            found += [
                prefix + (e.text or "") for e in root.iter() if e.tag.rsplit("}", 1)[-1] == tag
            ]
    return found


def weed_executable() -> str:
    candidate = Path(sys.executable).with_name("weed")
    return str(candidate) if candidate.exists() else "weed"


def _stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=3)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


@contextlib.contextmanager
def running_seaweedfs(directory: Path) -> Iterator[SeaweedFS]:
    """Start `weed server` with its state in `directory`; stop it when the block ends."""
    data = directory / "data"
    data.mkdir(parents=True, exist_ok=True)
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3")}
    grpc = {name: free_port() for name in ports}
    argv = [
        weed_executable(),
        "server",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={ports['master']}",
        f"-master.port.grpc={grpc['master']}",
        "-master.telemetry=false",
        "-master.volumeSizeLimitMB=256",
        "-volume.max=0",
        f"-volume.port={ports['volume']}",
        f"-volume.port.grpc={grpc['volume']}",
        "-volume.preStopSeconds=0",
        "-filer",
        f"-filer.port={ports['filer']}",
        f"-filer.port.grpc={grpc['filer']}",
        f"-filer.localSocket={directory / 'filer.sock'}",
        "-s3",
        f"-s3.port={ports['s3']}",
        f"-s3.port.grpc={grpc['s3']}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.localSocket={directory / 's3.sock'}",
    ]
    log = open(directory / "weed.log", "wb")  # noqa: SIM115  (the child owns it)
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=directory)
    log.close()
    server = SeaweedFS(ports["s3"], directory, process.pid)
    try:
        _wait_for_s3(server, process)
        yield server
    finally:
        _stop(process)


def _wait_for_s3(server: SeaweedFS, process: subprocess.Popen[bytes], timeout: float = 90) -> None:
    """Until a bucket can be created and deleted (the S3 port answers before the filer does)."""
    deadline = time.monotonic() + timeout
    probe = "probe-" + uuid.uuid4().hex[:8]
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = (server.directory / "weed.log").read_text(errors="replace")
            raise RuntimeError(f"weed server exited with {process.returncode}:\n{log[-4000:]}")
        try:
            server.create_bucket(probe)
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
            continue
        server.delete_bucket(probe)
        return
    raise RuntimeError(f"SeaweedFS S3 did not answer within {timeout}s")


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[SeaweedFS]:
    directory = Path(tempfile.mkdtemp(prefix="berth-seaweedfs-"))
    try:
        with running_seaweedfs(directory) as server:
            yield server
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def s3_bucket(seaweedfs: SeaweedFS) -> Iterator[str]:
    """A fresh, empty bucket for one test."""
    name = "t-" + uuid.uuid4().hex[:16]
    seaweedfs.create_bucket(name)
    try:
        yield name
    finally:
        seaweedfs.delete_bucket(name)
