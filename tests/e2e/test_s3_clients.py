"""Real clients against `berth serve` on S3 (SeaweedFS): skopeo pushes an image, then pulls
it back following Berth's presigned redirects to the bucket, or streamed through Berth when
`storage.redirect.disable` is set."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.clients import run, sha256_file
from tests.support.layouts import make_layer, write_layout
from tests.support.seaweedfs import SeaweedFS, berth_env
from tests.support.server import RunningServer, start_berth

pytestmark = [pytest.mark.e2e, pytest.mark.s3]

BLOB_GET = re.compile(
    r" method=GET route=\S+ path=/v2/s3/image/blobs/(sha256:[0-9a-f]{64}) \S+ status=(\d{3}) "
)


@pytest.fixture(params=[True, False], ids=["redirect", "stream"])
def redirect(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def berth_on_s3(
    redirect: bool, tmp_path: Path, seaweedfs: SeaweedFS, s3_bucket: str
) -> Iterator[RunningServer]:
    server = start_berth(
        tmp_path / "data", workers=2, env=berth_env(seaweedfs, s3_bucket, redirect=redirect)
    )
    try:
        yield server
    finally:
        server.stop()
    assert "Traceback (most recent call last)" not in server.log(), server.log()[-5000:]


def test_skopeo_push_and_pull(berth_on_s3: RunningServer, redirect: bool, tmp_path: Path) -> None:
    # One layer spans several S3 parts (5 MiB here), one is smaller than a part.
    big = make_layer({"big.bin": os.urandom(12 << 20)})
    small = make_layer({"etc/hello": b"hello from s3\n"})
    image = write_layout(tmp_path / "layout", "v1", [big, small])
    ref = f"docker://{berth_on_s3.host}/s3/image:v1"
    run(["skopeo", "copy", "--dest-tls-verify=false", f"oci:{tmp_path / 'layout'}:v1", ref])

    pulled = tmp_path / "pulled"
    run(["skopeo", "copy", "--src-tls-verify=false", ref, f"dir:{pulled}"])
    assert sha256_file(pulled / "manifest.json") == image.manifest_digest
    for digest in (image.config_digest, *image.layer_digests):
        assert sha256_file(pulled / digest.split(":")[1]) == digest

    served = {(m.group(1), m.group(2)) for m in BLOB_GET.finditer(berth_on_s3.log())}
    assert {digest for digest, _ in served} >= set(image.layer_digests)
    assert {status for _, status in served} == {"307" if redirect else "200"}, served
