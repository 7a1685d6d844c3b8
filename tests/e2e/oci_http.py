"""A small, literal OCI distribution client for black-box tests: requests against a real server.

It hides nothing a test asserts on: every call returns the `requests.Response`, and helpers
only build URLs and documents. Shared by the e2e registry tests (conformance, crash, memory).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

import requests

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
ALL_MANIFEST_TYPES = ", ".join([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST])


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data), **extra}


def dumps(document: dict[str, Any]) -> bytes:
    """Manifest bytes. Indented on purpose: the registry must keep these exact bytes."""
    return json.dumps(document, indent=3).encode()


def image_manifest(
    config: bytes,
    layers: list[bytes],
    *,
    media_type: str = OCI_MANIFEST,
    subject: dict[str, Any] | None = None,
    artifact_type: str | None = None,
    annotations: dict[str, str] | None = None,
    config_type: str | None = None,
) -> bytes:
    docker = media_type == DOCKER_MANIFEST
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": descriptor(config_type or (DOCKER_CONFIG if docker else OCI_CONFIG), config),
        "layers": [descriptor(DOCKER_LAYER if docker else OCI_LAYER, layer) for layer in layers],
    }
    if artifact_type is not None:
        doc["artifactType"] = artifact_type
    if subject is not None:
        doc["subject"] = subject
    if annotations is not None:
        doc["annotations"] = annotations
    return dumps(doc)


def index(
    children: list[tuple[str, bytes]],
    *,
    media_type: str = OCI_INDEX,
    subject: dict[str, Any] | None = None,
    artifact_type: str | None = None,
    annotations: dict[str, str] | None = None,
) -> bytes:
    platforms = [("amd64", "linux"), ("arm64", "linux"), ("s390x", "linux")]
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [
            descriptor(child_type, body, platform={"architecture": arch, "os": os_})
            for (child_type, body), (arch, os_) in zip(children, platforms, strict=False)
        ],
    }
    if artifact_type is not None:
        doc["artifactType"] = artifact_type
    if subject is not None:
        doc["subject"] = subject
    if annotations is not None:
        doc["annotations"] = annotations
    return dumps(doc)


def with_query(url: str, **params: str) -> str:
    """Add query parameters to a URL that may already carry some (a Location's `_state`)."""
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit(parts._replace(query=query))


def error_codes(response: requests.Response) -> list[str]:
    """The `code` of each error in an OCI error body (asserting the body has that shape)."""
    body = response.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("errors"), list), body
    assert body["errors"], body
    codes = []
    for error in body["errors"]:
        assert isinstance(error["code"], str), error
        assert error["code"].replace("_", "").isalpha(), error
        assert error["code"].isupper(), error
        codes.append(error["code"])
    return codes


class Registry:
    """One server under test: `request()` takes a path (`/v2/...`) or an absolute/relative URL."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        # Pulling manifests: "The client SHOULD include an Accept header".
        self.session.headers["Accept"] = ALL_MANIFEST_TYPES

    def url(self, path_or_url: str) -> str:
        return urljoin(self.base_url + "/", path_or_url)

    def request(self, method: str, path_or_url: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 60)
        kwargs.setdefault("allow_redirects", False)
        return self.session.request(method, self.url(path_or_url), **kwargs)

    def start_upload(self, name: str) -> str:
        response = self.request("POST", f"/v2/{name}/blobs/uploads/", data=b"")
        assert response.status_code == 202, (response.status_code, response.text)
        return self.url(response.headers["Location"])

    def push_blob(self, name: str, data: bytes) -> str:
        """POST then PUT (the flow every client supports); returns the digest."""
        digest = digest_of(data)
        location = self.start_upload(name)
        response = self.request(
            "PUT",
            with_query(location, digest=digest),
            data=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert response.status_code == 201, (response.status_code, response.text)
        return digest

    def put_manifest(
        self, name: str, reference: str, body: bytes, media_type: str
    ) -> requests.Response:
        return self.request(
            "PUT",
            f"/v2/{name}/manifests/{reference}",
            data=body,
            headers={"Content-Type": media_type},
        )

    def push_image(
        self, name: str, reference: str, *, media_type: str = OCI_MANIFEST, seed: str = ""
    ) -> tuple[bytes, str]:
        """Push a small image (config + 2 layers + manifest); returns (manifest bytes, digest)."""
        config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
        layers = [f"layer one {seed}".encode(), f"layer two {seed}".encode()]
        for blob in (config, *layers):
            self.push_blob(name, blob)
        body = image_manifest(config, layers, media_type=media_type)
        response = self.put_manifest(name, reference, body, media_type)
        assert response.status_code == 201, (response.status_code, response.text)
        return body, digest_of(body)
