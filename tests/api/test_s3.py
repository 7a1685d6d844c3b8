"""The registry API on S3 (a real SeaweedFS): push, pull through presigned redirects or
streamed, chunked uploads continued on another replica, mounts, and nothing left behind."""

from __future__ import annotations

import dataclasses
import io
import itertools
import os
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from registry import Config, create_app
from registry.config import RedirectConfig, S3Config, StorageConfig
from tests.api.oci import Client, digest_of, error_code
from tests.support.seaweedfs import ACCESS_KEY, REGION, SECRET_KEY, SeaweedFS, bucket_contents

pytestmark = pytest.mark.s3

CHUNK = 5 << 20
Replica = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
def replica(
    aiohttp_client: Callable[..., Awaitable[TestClient[web.Request, web.Application]]],
    config: Config,
    seaweedfs: SeaweedFS,
    s3_bucket: str,
) -> Replica:
    """Start one more registry app on the same database and bucket (another replica)."""

    async def start(*, redirect: bool = True) -> TestClient[web.Request, web.Application]:
        s3 = S3Config(
            accesskey=ACCESS_KEY,
            secretkey=SECRET_KEY,
            region=REGION,
            regionendpoint=seaweedfs.endpoint,
            bucket=s3_bucket,
            rootdirectory="/registry",
            forcepathstyle=True,
            chunksize=CHUNK,
        )
        storage = StorageConfig(s3=s3, redirect=RedirectConfig(disable=not redirect))
        return await aiohttp_client(create_app(dataclasses.replace(config, storage=storage)))

    return start


async def push_blob(client: Client, repo: str, data: bytes) -> str:
    digest = digest_of(data)
    response = await client.post(
        f"/v2/{repo}/blobs/uploads/?digest={digest}", data=io.BytesIO(data)
    )
    assert response.status == 201, await response.text()
    return digest


async def _fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers=headers) as response,
    ):
        return response.status, await response.read()


async def _assert_served_by_redirect(client: Client, path: str, data: bytes) -> None:
    response = await client.get(path, allow_redirects=False)
    assert response.status == 307
    location = response.headers["Location"]
    assert location.startswith("http://127.0.0.1:")
    assert "X-Amz-Signature=" in location
    assert await _fetch(location) == (200, data)
    assert await _fetch(location, {"Range": "bytes=3-9"}) == (206, data[3:10])


async def test_push_then_pull_through_a_presigned_redirect(
    replica: Replica, seaweedfs: SeaweedFS, s3_bucket: str
) -> None:
    client = await replica()
    data = os.urandom(70_000)
    digest = await push_blob(client, "s3/mono", data)
    await _assert_served_by_redirect(client, f"/v2/s3/mono/blobs/{digest}", data)
    head = await client.head(f"/v2/s3/mono/blobs/{digest}", allow_redirects=False)
    assert head.status == 200
    assert head.headers["Content-Length"] == str(len(data))
    assert head.headers["Docker-Content-Digest"] == digest
    assert "Location" not in head.headers
    key = f"registry/docker/registry/v2/blobs/sha256/{digest[7:9]}/{digest[7:]}/data"
    assert await bucket_contents(seaweedfs, s3_bucket) == [key]


async def test_redirects_off_streams_the_blob_and_honours_range(replica: Replica) -> None:
    client = await replica(redirect=False)
    data = os.urandom(CHUNK + 12_345)
    digest = await push_blob(client, "s3/stream", data)
    response = await client.get(f"/v2/s3/stream/blobs/{digest}", allow_redirects=False)
    assert response.status == 200
    assert response.headers["Docker-Content-Digest"] == digest
    assert await response.read() == data
    ranged = await client.get(
        f"/v2/s3/stream/blobs/{digest}", headers={"Range": f"bytes={CHUNK - 5}-{CHUNK + 4}"}
    )
    assert ranged.status == 206
    assert ranged.headers["Content-Range"] == f"bytes {CHUNK - 5}-{CHUNK + 4}/{len(data)}"
    assert await ranged.read() == data[CHUNK - 5 : CHUNK + 5]


async def test_chunked_upload_alternating_between_two_replicas(
    replica: Replica, seaweedfs: SeaweedFS, s3_bucket: str
) -> None:
    """Every PATCH and the final PUT go to the other replica than the request before; the
    tail past the last full part travels through the bucket, the hash state through SQL."""
    replicas = [await replica(), await replica(redirect=False)]
    data = os.urandom(2 * CHUNK + 777_777)
    cuts = [0, 100, CHUNK - 1, CHUNK + 3, 2 * CHUNK + 500_000, len(data) - 10, len(data)]
    response = await replicas[0].post("/v2/s3/chunked/blobs/uploads/")
    assert response.status == 202
    location = response.headers["Location"]
    for index, (start, stop) in enumerate(itertools.pairwise(cuts[:-1])):
        response = await replicas[(index + 1) % 2].patch(
            location,
            data=io.BytesIO(data[start:stop]),
            headers={"Content-Range": f"{start}-{stop - 1}"},
        )
        assert response.status == 202, await response.text()
        assert response.headers["Range"] == f"0-{stop - 1}"
    status = await replicas[0].get(location)
    assert status.headers["Range"] == f"0-{cuts[-2] - 1}"
    response = await replicas[len(cuts) % 2].put(
        f"{location}?digest={digest_of(data)}",
        data=io.BytesIO(data[cuts[-2] :]),
        headers={"Content-Range": f"{cuts[-2]}-{len(data) - 1}"},
    )
    assert response.status == 201, await response.text()
    streamed = await replicas[1].get(f"/v2/s3/chunked/blobs/{digest_of(data)}")
    assert await streamed.read() == data
    await _assert_served_by_redirect(replicas[0], f"/v2/s3/chunked/blobs/{digest_of(data)}", data)
    assert [k for k in await bucket_contents(seaweedfs, s3_bucket) if "/blobs/" not in k] == []


async def test_docker_style_single_patch_then_put(replica: Replica) -> None:
    client = await replica()
    data = os.urandom(3 * CHUNK // 2)
    response = await client.post("/v2/s3/docker/blobs/uploads/")
    response = await client.patch(response.headers["Location"], data=io.BytesIO(data))
    assert response.status == 202
    response = await client.put(f"{response.headers['Location']}?digest={digest_of(data)}")
    assert response.status == 201
    await _assert_served_by_redirect(client, f"/v2/s3/docker/blobs/{digest_of(data)}", data)


async def test_mount_from_another_repository(replica: Replica) -> None:
    client = await replica()
    data = os.urandom(10_000)
    digest = await push_blob(client, "s3/source", data)
    response = await client.post(f"/v2/s3/target/blobs/uploads/?mount={digest}&from=s3/source")
    assert response.status == 201
    assert response.headers["Docker-Content-Digest"] == digest
    await _assert_served_by_redirect(client, f"/v2/s3/target/blobs/{digest}", data)
    missing = await client.get(f"/v2/s3/other/blobs/{digest}", allow_redirects=False)
    assert missing.status == 404


async def test_failed_and_cancelled_uploads_leave_nothing_in_the_bucket(
    replica: Replica, seaweedfs: SeaweedFS, s3_bucket: str
) -> None:
    client = await replica()
    data = os.urandom(CHUNK + 1000)
    response = await client.post("/v2/s3/fail/blobs/uploads/")
    response = await client.patch(response.headers["Location"], data=io.BytesIO(data))
    wrong = digest_of(b"something else")
    response = await client.put(f"{response.headers['Location']}?digest={wrong}")
    assert response.status == 400
    assert await error_code(response) == "DIGEST_INVALID"
    for digest in (wrong, digest_of(data)):
        response = await client.get(f"/v2/s3/fail/blobs/{digest}", allow_redirects=False)
        assert response.status == 404
    response = await client.post("/v2/s3/cancel/blobs/uploads/")
    location = response.headers["Location"]
    response = await client.patch(location, data=data[:1000])
    assert response.status == 202
    assert (await client.delete(location)).status == 204
    assert (await client.get(location)).status == 404
    assert await bucket_contents(seaweedfs, s3_bucket) == []
