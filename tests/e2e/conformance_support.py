"""Fixtures and helpers shared by the test_registry_conformance*.py modules.

Each module binds the fixtures at its top (`server = support.server`, …), so each gets its
own server (module scope) and each test its own repository (`name`).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
from collections.abc import Iterator

import pytest
import requests

from tests.e2e.oci_http import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Registry,
    digest_of,
    error_codes,
    image_manifest,
    index,
)
from tests.support.server import RunningServer, registry_server

UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.I)
OCTET = {"Content-Type": "application/octet-stream"}


@pytest.fixture(
    scope="module", params=["single", pytest.param("cluster", marks=pytest.mark.cluster)]
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """One `berth serve`; or, as `cluster`, three replicas on PostgreSQL behind nginx (the
    session's cluster), so every workflow also runs through a round-robin balancer."""
    with contextlib.ExitStack() as stack:
        if request.param == "cluster":
            running: RunningServer = request.getfixturevalue("cluster").endpoint
        else:
            # Two workers share the socket, as `berth serve` runs by default on this 2-core
            # machine: consecutive requests of one upload may land on different processes.
            running = stack.enter_context(
                registry_server(tmp_path_factory.mktemp("conformance"), workers=2)
            )
        yield running
    # Every request of these modules is one a registry must handle: none may end in a
    # traceback (a 500, or a reset connection, that a status assertion could miss).
    log = running.log()
    if running.kind == "berth" and ("Traceback" in log or " ERROR " in log):
        pytest.fail(
            f"berth logged an error while serving the conformance workflows:\n{log[-4000:]}"
        )


@pytest.fixture
def reg(server: RunningServer) -> Registry:
    return Registry(server.url)


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """A repository of this test's own, nested as real ones often are."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:80].strip("-")
    return f"conformance/{slug}"


def assert_error(response: requests.Response, status: int, *codes: str) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    found = error_codes(response)
    assert set(found) & set(codes), (found, codes)


def patch(reg: Registry, location: str, chunk: bytes, start: int) -> requests.Response:
    return reg.request(
        "PATCH",
        location,
        data=chunk,
        headers={
            **OCTET,
            "Content-Range": f"{start}-{start + len(chunk) - 1}",
            "Content-Length": str(len(chunk)),
        },
    )


def push_children(reg: Registry, name: str, child_type: str, count: int) -> list[bytes]:
    children = []
    for i in range(count):
        config = json.dumps({"architecture": "amd64", "os": "linux", "i": i}).encode()
        layer = f"layer of child {i}".encode()
        reg.push_blob(name, config)
        reg.push_blob(name, layer)
        body = image_manifest(config, [layer], media_type=child_type)
        assert reg.put_manifest(name, digest_of(body), body, child_type).status_code == 201
        children.append(body)
    return children


def build_manifest(reg: Registry, name: str, media_type: str) -> bytes:
    if media_type in (OCI_MANIFEST, DOCKER_MANIFEST):
        config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {}}).encode()
        layers = [os.urandom(100), os.urandom(200)]
        for blob in (config, *layers):
            reg.push_blob(name, blob)
        return image_manifest(config, layers, media_type=media_type)
    child_type = OCI_MANIFEST if media_type == OCI_INDEX else DOCKER_MANIFEST
    children = push_children(reg, name, child_type, 2)
    return index([(child_type, body) for body in children], media_type=media_type)


def raw_request(
    server: RunningServer,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """Send the path byte for byte (requests would normalise `..` away)."""
    connection = http.client.HTTPConnection(server.host, timeout=10)
    try:
        connection.request(
            method, path, body=body, headers={**(headers or {}), "Content-Length": str(len(body))}
        )
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()
