"""Helpers for API tests: push blobs and manifests the way clients do, check error bodies."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

Client = TestClient[Any, Any]


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def error_code(response: ClientResponse) -> str:
    body = await response.json(content_type=None)
    assert set(body) == {"errors"}, body
    assert body["errors"][0]["message"], body
    return str(body["errors"][0]["code"])


async def push_blob(client: Client, repo: str, data: bytes) -> str:
    digest = digest_of(data)
    response = await client.post(f"/v2/{repo}/blobs/uploads/?digest={digest}", data=data)
    assert response.status == 201, await response.text()
    return digest


def descriptor(media_type: str, data: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data)}


async def push_image(
    client: Client,
    repo: str,
    *,
    layer: bytes = b"layer bytes",
    config: bytes = b'{"architecture":"amd64","os":"linux"}',
    media_type: str = OCI_MANIFEST,
    extra: dict[str, Any] | None = None,
    reference: str | None = "latest",
) -> tuple[str, bytes]:
    """Push config + one layer + an image manifest; returns (digest, manifest bytes)."""
    docker = media_type == DOCKER_MANIFEST
    await push_blob(client, repo, config)
    await push_blob(client, repo, layer)
    manifest = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": descriptor(DOCKER_CONFIG if docker else OCI_CONFIG, config),
        "layers": [descriptor(DOCKER_LAYER if docker else OCI_LAYER, layer)],
        **(extra or {}),
    }
    payload = json.dumps(manifest).encode()
    digest = digest_of(payload)
    response = await client.put(
        f"/v2/{repo}/manifests/{reference or digest}",
        data=payload,
        headers={"Content-Type": media_type},
    )
    assert response.status == 201, await response.text()
    assert response.headers["Docker-Content-Digest"] == digest
    return digest, payload
