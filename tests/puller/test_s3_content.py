"""The puller's local store takes any BlobStore: here its content lives in S3 (SeaweedFS),
and pulling, unpacking, reading the config and pruning all go through the protocol."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from blobstore.s3 import S3BlobStore
from puller import ImageStore
from tests.blobstore.conftest import s3_options
from tests.support import images as img
from tests.support.seaweedfs import SeaweedFS, bucket_contents
from tests.support.server import RunningServer

pytestmark = pytest.mark.s3


@pytest.fixture
async def content(seaweedfs: SeaweedFS, s3_bucket: str) -> AsyncIterator[S3BlobStore]:
    store = S3BlobStore(s3_options(seaweedfs, s3_bucket))
    yield store
    await store.close()


async def test_pull_unpack_and_prune_with_content_in_s3(
    registry: RunningServer,
    content: S3BlobStore,
    seaweedfs: SeaweedFS,
    s3_bucket: str,
    tmp_path: Path,
) -> None:
    big = os.urandom(7 << 20)  # more than one S3 part even compressed
    layers = [
        img.build_layer([img.file("etc/motd", b"from s3\n")]),
        img.build_layer([img.file("big.bin", big)], ""),
    ]
    image = img.build_image(layers, config={"Env": ["WHERE=s3"], "Cmd": ["/bin/sh"]})
    img.push_image(registry.url, "puller/s3", "v1", image)

    store = ImageStore(tmp_path / "state", content)
    record = await store.pull(f"{registry.host}/puller/s3:v1", plain_http=True)
    top, base = reversed(store.layer_dirs(record))
    assert (base / "etc" / "motd").read_bytes() == b"from s3\n"
    assert (top / "big.bin").read_bytes() == big
    assert (await store.read_image_config(record))["config"] == {
        "Env": ["WHERE=s3"],
        "Cmd": ["/bin/sh"],
    }
    assert not (tmp_path / "state" / "content").exists()
    stored = {info.digest async for info in content.walk()}
    assert {record.manifest_digest, record.config_digest, *record.layers} <= stored

    store.remove(str(record.reference))
    report = await store.prune()
    assert report.blobs_deleted == len(stored)
    assert await bucket_contents(seaweedfs, s3_bucket) == []
