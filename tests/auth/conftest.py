"""Fixtures for the auth tests: users in an htpasswd file, and the real registry app
(`create_app`) with an `auth` section, served through aiohttp's test client."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from aiohttp.test_utils import TestClient

from registry.app import create_app
from registry.config import Config
from registry.db import upgrade

USERS = {"alice": "alice-pw", "puller": "puller-pw", "admin": "admin-pw"}

AppFactory = Callable[[dict[str, Any]], Awaitable[TestClient[Any, Any]]]


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def htpasswd(tmp_path: Path) -> Path:
    path = tmp_path / "htpasswd"
    path.write_text(
        "".join(
            f"{user}:{bcrypt.hashpw(pw.encode(), bcrypt.gensalt(4)).decode()}\n"
            for user, pw in USERS.items()
        )
    )
    return path


@pytest.fixture
def make_client(tmp_path: Path, aiohttp_client: Any) -> AppFactory:
    async def make(auth: dict[str, Any]) -> TestClient[Any, Any]:
        config = Config(datadir=str(tmp_path / "data"), auth=auth)
        upgrade(config.database_url)
        return await aiohttp_client(create_app(config))  # type: ignore[no-any-return]

    return make


async def push_blob(
    client: TestClient[Any, Any], repo: str, data: bytes, headers: dict[str, str]
) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    resp = await client.post(
        f"/v2/{repo}/blobs/uploads/?digest={digest}", data=data, headers=headers
    )
    assert resp.status == 201, await resp.text()
    return digest


async def push_image(
    client: TestClient[Any, Any], repo: str, tag: str, headers: dict[str, str]
) -> str:
    """A minimal OCI image (config + one layer) pushed with `headers`; returns its digest."""
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    ).encode()
    layer = repo.encode() + b" layer"
    config_digest = await push_blob(client, repo, config, headers)
    layer_digest = await push_blob(client, repo, layer, headers)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest,
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    resp = await client.put(
        f"/v2/{repo}/manifests/{tag}",
        data=manifest,
        headers={**headers, "Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert resp.status == 201, await resp.text()
    return "sha256:" + hashlib.sha256(manifest).hexdigest()
