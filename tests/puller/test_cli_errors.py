"""Every failure of pull, mount and rmi ends with one line on stderr and a non-zero status
(2 for a bad command line); `--debug` adds the traceback. A registry that serves other bytes
under a layer's digest is the case that used to print a traceback."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.puller.conftest import Berth, state_leftovers
from tests.support import images as img
from tests.support.server import berth_executable

pytestmark = pytest.mark.e2e


class LyingRegistry:
    """Serves one image, but answers the GET of its layer with other bytes."""

    def __init__(self, image: img.Image, lie: bytes) -> None:
        self.image = image
        layer = image.layers[0].data
        self.blobs = {img.sha256(image.config): image.config, img.sha256(layer): lie}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path == "/v2/":
            return web.json_response({})
        if "/manifests/" in path:
            headers = {"Docker-Content-Digest": self.image.digest}
            return web.Response(
                body=self.image.manifest, content_type=self.image.media_type, headers=headers
            )
        digest = path.rsplit("/", 1)[1]
        if "/blobs/" in path and digest in self.blobs:
            return web.Response(body=self.blobs[digest], content_type="application/octet-stream")
        return web.json_response({"errors": [{"code": "BLOB_UNKNOWN"}]}, status=404)


async def _berth(root: Path, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        berth_executable(),
        *args,
        "--root",
        str(root),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("lie", ["other", "longer"])
async def test_lying_registry_is_refused_with_one_line(
    tmp_path: Path, aiohttp_server: Any, lie: str
) -> None:
    layer = img.build_layer([img.file("a", os.urandom(300_000))], "")
    other = bytes(len(layer.data)) if lie == "other" else layer.data + b"more"
    registry = LyingRegistry(img.build_image([layer]), other)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", registry.handle)
    server = await aiohttp_server(app)
    reference = f"127.0.0.1:{server.port}/liar/image:v1"
    root = tmp_path / "state"

    code, _, err = await _berth(root, "pull", reference)

    assert code == 1
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("berth pull: ")
    assert f"blob {layer.digest}: the registry sent other bytes" in err
    assert "Traceback" not in err
    assert state_leftovers(root) == []
    assert not (root / "images.json").exists()

    code, _, err = await _berth(root, "--debug", "pull", reference)
    assert code == 1
    assert err.startswith("Traceback (most recent call last):")
    assert err.strip().splitlines()[-1].startswith("berth pull: ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pull", "--user", "nocolon", "127.0.0.1:1/a:b"], "berth pull: --user: "),
        (["pull"], "the following arguments are required: REF"),
        (["pull", "--max-layer-size", "lots", "a"], "'lots' is not a size"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["run", "--runtime", "kata", "a"], "invalid choice: 'kata'"),
    ],
)
def test_usage_errors_exit_2(berth: Berth, args: list[str], message: str) -> None:
    proc = berth(*args, check=False)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    "args",
    [
        ["rmi", "nothing/here:v1"],
        ["mount", "nothing/here:v1", "/tmp"],
        ["pull", "INVALID//ref"],
        ["pull", "127.0.0.1:1/nobody/listens:v1"],
        ["umount", "/no/such/mount/point"],
    ],
    ids=["rmi-unknown", "mount-unknown", "pull-invalid", "pull-refused", "umount-nothing"],
)
def test_failures_are_one_line(berth: Berth, args: list[str]) -> None:
    proc = berth(*args, check=False)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith(f"berth {args[0]}: ")
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
