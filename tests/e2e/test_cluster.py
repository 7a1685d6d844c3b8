"""Three `berth serve` replicas on one PostgreSQL and one blob store, behind nginx (round
robin, no stickiness), used as one registry: docker through the balancer, a chunked upload
spread over every replica by the client itself, and a replica killed mid-upload.

The registry conformance workflows run through the same balancer too: their `server`
fixture (tests/e2e/conformance_support.py) has a `cluster` parameter.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import DockerImages, write_busybox_context
from tests.e2e.oci_http import digest_of
from tests.support.clients import run
from tests.support.cluster import Cluster
from tests.support.postgres import PostgresServer

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]

OCTET = {"Content-Type": "application/octet-stream"}


def test_docker_push_and_pull_through_the_balancer(
    cluster: Cluster, tmp_path: Path, docker_images: DockerImages, docker_config: dict[str, str]
) -> None:
    context = write_busybox_context(tmp_path / "context", "COPY greeting /greeting\n")
    (context / "greeting").write_bytes(os.urandom(3 << 20))  # a second, bigger layer
    ref = docker_images.build(context, f"{cluster.host}/cluster/busybox-{uuid.uuid4().hex[:8]}:1")
    logged = len(cluster.balancer.access_log())
    pushed = run(["docker", "push", ref], env=docker_config).stdout
    assert "digest: sha256:" in pushed
    docker_images.remove(ref)
    run(["docker", "pull", ref], env=docker_config)
    output = run(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            "none",
            ref,
            "/bin/busybox",
            "sha256sum",
            "/greeting",
        ],
        env=docker_config,
    ).stdout
    assert output.split()[0] == hashlib.sha256((context / "greeting").read_bytes()).hexdigest()
    served = cluster.balancer.upstreams_used(cluster.balancer.access_log()[logged:])
    assert {replica.host for replica in cluster.replicas} <= set(served)


def _chunks(data: bytes, sizes: list[int]) -> list[bytes]:
    out, start = [], 0
    for size in sizes:
        out.append(data[start : start + size])
        start += size
    assert start == len(data)
    return out


def _offset(url: str, location: str) -> int:
    """The offset of a non-empty upload, from GET on `url` (`Range: 0-<last byte>`)."""
    response = requests.get(url + location, timeout=30)
    assert response.status_code == 204, response.text
    return int(response.headers["Range"].split("-")[1]) + 1


def test_chunked_upload_with_every_request_on_another_replica(cluster: Cluster) -> None:
    data = os.urandom(13 << 20)
    # Uneven chunks, some below and some above S3's 5 MiB part size.
    chunks = _chunks(data, [1 << 20, 6 << 20, 123_457, 3 << 20, (3 << 20) - 123_457])
    urls = [replica.url for replica in cluster.replicas]
    name = f"cluster/chunked-{uuid.uuid4().hex[:8]}"
    response = requests.post(f"{urls[0]}/v2/{name}/blobs/uploads/", timeout=30)
    assert response.status_code == 202, response.text
    location, offset = response.headers["Location"], 0
    for i, chunk in enumerate(chunks[:-1], start=1):
        response = requests.patch(
            urls[i % len(urls)] + location,
            data=chunk,
            headers={**OCTET, "Content-Range": f"{offset}-{offset + len(chunk) - 1}"},
            timeout=60,
        )
        assert response.status_code == 202, (i, response.text)
        offset += len(chunk)
        assert response.headers["Range"] == f"0-{offset - 1}"
        location = response.headers["Location"]
    final = urls[len(chunks) % len(urls)]
    assert final != urls[(len(chunks) - 1) % len(urls)]
    response = requests.put(
        f"{final}{location}?digest={digest_of(data)}", data=chunks[-1], headers=OCTET, timeout=60
    )
    assert response.status_code == 201, response.text
    for url in [cluster.url, *urls]:
        pulled = requests.get(f"{url}/v2/{name}/blobs/{digest_of(data)}", timeout=60)
        assert pulled.status_code == 200
        assert hashlib.sha256(pulled.content).hexdigest() == digest_of(data).split(":")[1]


def _start_slow_patch(host: str, location: str, offset: int, chunk: bytes, sent: int) -> object:
    """PATCH `chunk` at `offset`, but send only its first `sent` bytes; the caller then kills
    the server. Returns the open connection (kept alive so the request stays in flight)."""
    connection = http.client.HTTPConnection(host, timeout=30)
    connection.putrequest("PATCH", location)
    connection.putheader("Content-Type", "application/octet-stream")
    connection.putheader("Content-Range", f"{offset}-{offset + len(chunk) - 1}")
    connection.putheader("Content-Length", str(len(chunk)))
    connection.endheaders()
    connection.send(chunk[:sent])
    return connection


def test_replica_killed_mid_upload_is_finished_through_another(cluster: Cluster) -> None:
    data = os.urandom(9 << 20)
    first, second = data[: 3 << 20], data[3 << 20 :]
    doomed, survivor, finisher = cluster.replicas
    name = f"cluster/crash-{uuid.uuid4().hex[:8]}"
    response = requests.post(f"{doomed.url}/v2/{name}/blobs/uploads/", timeout=30)
    location = response.headers["Location"]
    response = requests.patch(
        doomed.url + location,
        data=first,
        headers={**OCTET, "Content-Range": f"0-{len(first) - 1}"},
        timeout=60,
    )
    assert response.status_code == 202, response.text
    in_flight = _start_slow_patch(doomed.host, location, len(first), second, 2 << 20)
    time.sleep(1.0)  # the replica is writing the chunk (and holds the upload's lease)
    cluster.kill(0)
    try:
        offset = _offset(survivor.url, location)
        # What the dead replica wrote before dying is kept or dropped, never garbled.
        assert len(first) <= offset <= len(first) + (2 << 20)
        deadline = time.monotonic() + 60  # the dead replica's lease expires within its ttl
        while True:
            response = requests.patch(
                survivor.url + location,
                data=data[offset:],
                headers={**OCTET, "Content-Range": f"{offset}-{len(data) - 1}"},
                timeout=60,
            )
            if response.status_code != 416 or time.monotonic() > deadline:
                break
            assert response.headers["Range"] == f"0-{offset - 1}"  # busy, not moved
            time.sleep(1.0)
        assert response.status_code == 202, response.text
        done = requests.put(f"{finisher.url}{location}?digest={digest_of(data)}", timeout=60)
        assert done.status_code == 201, done.text
        pulled = requests.get(f"{cluster.url}/v2/{name}/blobs/{digest_of(data)}", timeout=60)
        assert pulled.content == data
    finally:
        in_flight.close()  # type: ignore[attr-defined]  # an HTTPConnection
        cluster.restart(0)
    assert requests.get(f"{cluster.replicas[0].url}/v2/", timeout=30).status_code == 200


def test_upload_purging_runs_on_one_replica_and_moves_when_it_dies(
    cluster: Cluster, postgres_server: PostgresServer
) -> None:
    database = cluster.database_url.rsplit("/", 1)[1]

    def leader_pid() -> int | None:
        holder = postgres_server.sql(
            "SELECT holder FROM leases WHERE name = 'upload-purging' AND expires_at > now()",
            database,
        ).strip()
        return int(holder.split(":")[1]) if holder else None  # host:pid:random

    pids = [replica.process.pid for replica in cluster.replicas]
    deadline = time.monotonic() + 60  # a replica killed by an earlier test may still hold it
    while (leader := leader_pid()) not in pids and time.monotonic() < deadline:
        time.sleep(1.0)
    assert leader in pids
    index = pids.index(leader)
    cluster.kill(index)
    try:
        deadline = time.monotonic() + 60  # the lease's ttl (30 s) plus a retry period
        while (successor := leader_pid()) in (None, leader) and time.monotonic() < deadline:
            time.sleep(1.0)
        assert successor in pids
        assert successor != leader
    finally:
        cluster.restart(index)
