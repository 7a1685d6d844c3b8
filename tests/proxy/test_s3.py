"""The pull-through cache on S3 (a real SeaweedFS): blobs stream from the upstream into a
multipart upload, verified at its commit; bytes that are not the digest leave nothing behind."""

from __future__ import annotations

import dataclasses
import io
import json
import os

import aiohttp
import pytest

from registry import Config
from registry.config import S3Config, StorageConfig
from tests.api.oci import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, Client, descriptor, digest_of
from tests.proxy.conftest import CacheFactory
from tests.proxy.forwarder import Forwarder
from tests.support.seaweedfs import ACCESS_KEY, REGION, SECRET_KEY, SeaweedFS, bucket_contents

pytestmark = pytest.mark.s3

LAYER_SIZE = 12 << 20  # three parts of the 5 MiB chunk size


async def _push(session: Client, repo: str) -> tuple[str, bytes]:
    layer = os.urandom(LAYER_SIZE)
    response = await session.post(
        f"/v2/{repo}/blobs/uploads/?digest={digest_of(layer)}", data=io.BytesIO(layer)
    )
    assert response.status == 201
    config = b'{"architecture":"amd64","os":"linux"}'
    response = await session.post(
        f"/v2/{repo}/blobs/uploads/?digest={digest_of(config)}", data=config
    )
    assert response.status == 201
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": [{"mediaType": OCI_LAYER, "digest": digest_of(layer), "size": len(layer)}],
    }
    response = await session.put(
        f"/v2/{repo}/manifests/latest",
        data=json.dumps(manifest).encode(),
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert response.status == 201
    return digest_of(layer), layer


def _on_s3(config: Config, seaweedfs: SeaweedFS, bucket: str) -> Config:
    s3 = S3Config(
        accesskey=ACCESS_KEY,
        secretkey=SECRET_KEY,
        region=REGION,
        regionendpoint=seaweedfs.endpoint,
        bucket=bucket,
        rootdirectory="/registry",
        forcepathstyle=True,
        chunksize=5 << 20,
    )
    return dataclasses.replace(config, storage=StorageConfig(s3=s3))


async def test_pull_through_onto_s3(
    upstream_session: Client,
    forwarder: tuple[Forwarder, str],
    make_cache: CacheFactory,
    base_config: Config,
    seaweedfs: SeaweedFS,
    s3_bucket: str,
) -> None:
    counter, url = forwarder
    layer_digest, layer = await _push(upstream_session, "s3/app")
    cache = await make_cache(url, config=_on_s3(base_config, seaweedfs, s3_bucket))
    response = await cache.get(f"/v2/up/s3/app/blobs/{layer_digest}")
    assert response.status == 200
    assert await response.read() == layer  # streamed while stored
    # Cached: a presigned redirect to the bucket, the upstream not asked again.
    async with aiohttp.ClientSession() as session:
        again = await session.get(cache.make_url(f"/v2/up/s3/app/blobs/{layer_digest}"))
        assert await again.read() == layer
    assert counter.count("GET", "blobs") == 1
    assert not [
        key for key in await bucket_contents(seaweedfs, s3_bucket) if key.startswith("multipart")
    ]


async def test_bytes_that_are_not_the_digest_leave_nothing_in_the_bucket(
    upstream_session: Client,
    forwarder: tuple[Forwarder, str],
    make_cache: CacheFactory,
    base_config: Config,
    seaweedfs: SeaweedFS,
    s3_bucket: str,
) -> None:
    counter, url = forwarder
    layer_digest, _ = await _push(upstream_session, "s3/lying")
    counter.corrupt_blobs = True
    cache = await make_cache(url, config=_on_s3(base_config, seaweedfs, s3_bucket))
    response = await cache.get(f"/v2/up/s3/lying/blobs/{layer_digest}")
    with pytest.raises(aiohttp.ClientPayloadError):
        await response.read()
    assert await bucket_contents(seaweedfs, s3_bucket) == []
