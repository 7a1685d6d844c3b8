"""Spec workflows, pushing and pulling manifests: every media type, exact bytes, validation,
error paths, `?tag=`. See test_registry_conformance.py for how these modules run."""

from __future__ import annotations

import json
import threading

import pytest

from tests.e2e import conformance_support as support
from tests.e2e.conformance_support import (
    assert_error,
    build_manifest,
    push_children,
)
from tests.e2e.oci_http import (
    ALL_MANIFEST_TYPES,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    Registry,
    descriptor,
    digest_of,
    dumps,
    image_manifest,
    index,
)

pytestmark = pytest.mark.e2e
server, reg, name = support.server, support.reg, support.name


# -- push and pull: manifests ------------------------------------------------------------


@pytest.mark.parametrize("media_type", [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST])
def test_push_and_pull_manifest(reg: Registry, name: str, media_type: str) -> None:
    """Pushing manifests / Pulling manifests: exact bytes, own media type, digest headers."""
    body = build_manifest(reg, name, media_type)
    digest = digest_of(body)
    put = reg.put_manifest(name, "v1", body, media_type)
    assert put.status_code == 201, put.text
    assert put.headers["Docker-Content-Digest"] == digest
    assert (
        reg.request("GET", put.headers["Location"], headers={"Accept": media_type}).content == body
    )
    for reference in ("v1", digest):
        got = reg.request(
            "GET", f"/v2/{name}/manifests/{reference}", headers={"Accept": ALL_MANIFEST_TYPES}
        )
        assert got.status_code == 200, got.text
        assert got.content == body
        assert got.headers["Content-Type"] == media_type
        assert got.headers["Docker-Content-Digest"] == digest
        head = reg.request(
            "HEAD", f"/v2/{name}/manifests/{reference}", headers={"Accept": ALL_MANIFEST_TYPES}
        )
        assert head.status_code == 200
        assert head.headers["Content-Length"] == str(len(body))
        assert head.headers["Docker-Content-Digest"] == digest
        assert head.headers["Content-Type"] == media_type
        assert head.content == b""


def test_put_manifest_by_digest(reg: Registry, name: str) -> None:
    body = build_manifest(reg, name, OCI_MANIFEST)
    put = reg.put_manifest(name, digest_of(body), body, OCI_MANIFEST)
    assert put.status_code == 201, put.text
    assert put.headers["Docker-Content-Digest"] == digest_of(body)
    assert reg.request("GET", f"/v2/{name}/manifests/{digest_of(body)}").content == body


def test_put_manifest_by_sha512_digest(reg: Registry, name: str) -> None:
    """Pushing manifests: Docker-Content-Digest "MUST be equal to the client provided digest",
    so a manifest pushed by its sha512 digest is answered, and found, by that digest."""
    body = build_manifest(reg, name, OCI_MANIFEST)
    digest = digest_of(body, "sha512")
    put = reg.put_manifest(name, digest, body, OCI_MANIFEST)
    assert put.status_code == 201, put.text
    assert put.headers["Docker-Content-Digest"] == digest
    got = reg.request("GET", f"/v2/{name}/manifests/{digest}")
    assert (got.status_code, got.content) == (200, body)
    assert got.headers["Docker-Content-Digest"] == digest


def test_put_manifest_by_wrong_digest(reg: Registry, name: str) -> None:
    body = build_manifest(reg, name, OCI_MANIFEST)
    wrong = digest_of(b"not the manifest")
    put = reg.put_manifest(name, wrong, body, OCI_MANIFEST)
    assert_error(put, 400, "DIGEST_INVALID")
    assert reg.request("HEAD", f"/v2/{name}/manifests/{wrong}").status_code == 404
    assert reg.request("HEAD", f"/v2/{name}/manifests/{digest_of(body)}").status_code == 404


def test_put_manifest_by_digest_with_tags(reg: Registry, name: str) -> None:
    """end-7b: `?tag=` parameters tag the manifest; one `OCI-Tag` per accepted tag."""
    body = build_manifest(reg, name, OCI_MANIFEST)
    tags = ["1.2.3", "1.2", "1", "latest"]
    query = "&".join(f"tag={t}" for t in tags)
    put = reg.request(
        "PUT",
        f"/v2/{name}/manifests/{digest_of(body)}?{query}",
        data=body,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert put.status_code == 201, put.text
    announced = [
        t.strip() for value in put.raw.headers.getlist("OCI-Tag") for t in value.split(",")
    ]
    assert sorted(announced) == sorted(tags)
    for tag in tags:
        got = reg.request("GET", f"/v2/{name}/manifests/{tag}")
        assert (got.status_code, got.content) == (200, body)
    listed = reg.request("GET", f"/v2/{name}/tags/list").json()
    assert listed == {"name": name, "tags": sorted(tags)}


def test_manifest_keeps_exact_bytes(reg: Registry, name: str) -> None:
    """ "The registry MUST store the manifest in the exact byte representation provided"."""
    config = b'{"architecture":"amd64","os":"linux"}'
    reg.push_blob(name, config)
    body = (
        b'{\n\t"schemaVersion" :2,  "mediaType": "' + OCI_MANIFEST.encode() + b'",\n'
        b'"config": ' + json.dumps(descriptor(OCI_CONFIG, config)).encode() + b",\n"
        b'  "layers": [], "annotations": {"k": "\\u00e9t\\u00e9"}   }\n\n'
    )
    put = reg.put_manifest(name, "exact", body, OCI_MANIFEST)
    assert put.status_code == 201, put.text
    assert put.headers["Docker-Content-Digest"] == digest_of(body)
    assert reg.request("GET", f"/v2/{name}/manifests/exact").content == body


def test_manifest_with_missing_blob_is_rejected(reg: Registry, name: str) -> None:
    """Push: a manifest referencing an unknown blob is MANIFEST_BLOB_UNKNOWN."""
    config = b'{"architecture":"amd64","os":"linux"}'
    reg.push_blob(name, config)
    body = image_manifest(config, [b"layer never pushed"])
    put = reg.put_manifest(name, "broken", body, OCI_MANIFEST)
    assert_error(put, 400, "MANIFEST_BLOB_UNKNOWN")
    assert reg.request("HEAD", f"/v2/{name}/manifests/broken").status_code == 404


def test_index_with_missing_child_is_rejected(reg: Registry, name: str) -> None:
    children = push_children(reg, name, OCI_MANIFEST, 1)
    ghost = image_manifest(b"{}", [b"ghost"])
    body = index([(OCI_MANIFEST, children[0]), (OCI_MANIFEST, ghost)])
    put = reg.put_manifest(name, "broken", body, OCI_INDEX)
    assert_error(put, 400, "MANIFEST_BLOB_UNKNOWN")
    assert reg.request("HEAD", f"/v2/{name}/manifests/broken").status_code == 404


def test_non_distributable_layer_need_not_be_present(reg: Registry, name: str) -> None:
    config = b'{"architecture":"amd64","os":"windows"}'
    reg.push_blob(name, config)
    foreign = {
        "mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "digest": digest_of(b"foreign layer"),
        "size": 13,
        "urls": ["https://example.com/foreign.tar.gz"],
    }
    body = dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [foreign],
        }
    )
    put = reg.put_manifest(name, "foreign", body, OCI_MANIFEST)
    assert put.status_code == 201, put.text


@pytest.mark.parametrize(
    "body", [b"{not json", b"[]", b'{"schemaVersion": 2, "mediaType": 5}', b""]
)
def test_invalid_manifest_is_rejected(reg: Registry, name: str, body: bytes) -> None:
    put = reg.put_manifest(name, "bad", body, OCI_MANIFEST)
    assert_error(put, 400, "MANIFEST_INVALID")
    assert reg.request("HEAD", f"/v2/{name}/manifests/bad").status_code == 404


def test_media_type_must_match_content_type(reg: Registry, name: str) -> None:
    """ "If a manifest includes a `mediaType` field, clients MUST set the Content-Type header
    to the value specified by the `mediaType` field"; a registry rejects the inconsistency."""
    body = build_manifest(reg, name, OCI_MANIFEST)
    put = reg.put_manifest(name, "mixed", body, DOCKER_MANIFEST)
    assert_error(put, 400, "MANIFEST_INVALID")


def manifest_of_size(config: bytes, size: int) -> bytes:
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": [],
        "annotations": {"padding": ""},
    }
    document["annotations"] = {"padding": "x" * (size - len(json.dumps(document)))}
    body = json.dumps(document).encode()
    assert len(body) == size
    return body


def test_manifest_of_4_mib_is_accepted(reg: Registry, name: str) -> None:
    """ "registry implementations SHOULD expect to be able to support manifest pushes of at
    least 4 megabytes" (here: exactly 4 MiB)."""
    config = b'{"architecture":"amd64","os":"linux"}'
    reg.push_blob(name, config)
    body = manifest_of_size(config, 4 * 1024 * 1024)
    put = reg.put_manifest(name, "big", body, OCI_MANIFEST)
    assert put.status_code == 201, put.text[:300]
    got = reg.request("GET", f"/v2/{name}/manifests/big")
    assert (got.status_code, got.content) == (200, body)


def test_manifest_over_4_mib_is_413(reg: Registry, name: str) -> None:
    """ "A registry SHOULD enforce some limit … respond … with 413 Payload Too Large"
    (Berth's limit: 4 MiB, so one byte more is refused and nothing is stored)."""
    config = b'{"architecture":"amd64","os":"linux"}'
    reg.push_blob(name, config)
    body = manifest_of_size(config, 4 * 1024 * 1024 + 1)
    put = reg.put_manifest(name, "huge", body, OCI_MANIFEST)
    assert put.status_code == 413, put.text[:300]
    assert reg.request("HEAD", f"/v2/{name}/manifests/huge").status_code == 404
    assert reg.request("HEAD", f"/v2/{name}/manifests/{digest_of(body)}").status_code == 404


def test_missing_manifest_is_404(reg: Registry, name: str) -> None:
    reg.push_image(name, "exists")
    assert_error(reg.request("GET", f"/v2/{name}/manifests/nope"), 404, "MANIFEST_UNKNOWN")
    unknown_digest = digest_of(b"no such manifest")
    assert_error(
        reg.request("GET", f"/v2/{name}/manifests/{unknown_digest}"), 404, "MANIFEST_UNKNOWN"
    )
    head = reg.request("HEAD", f"/v2/{name}/manifests/nope")
    assert (head.status_code, head.content) == (404, b"")


def test_pull_from_nonexistent_repository_is_404(reg: Registry, name: str) -> None:
    """ "An attempt to pull a nonexistent repository MUST return response code 404"."""
    response = reg.request("GET", f"/v2/{name}/never/manifests/latest")
    assert_error(response, 404, "NAME_UNKNOWN", "MANIFEST_UNKNOWN")


def test_retag_moves_the_tag(reg: Registry, name: str) -> None:
    first, _ = reg.push_image(name, "moving", seed="one")
    second, _ = reg.push_image(name, "moving", seed="two")
    assert reg.request("GET", f"/v2/{name}/manifests/moving").content == second
    assert reg.request("GET", f"/v2/{name}/manifests/{digest_of(first)}").content == first


def test_concurrent_pushes_of_one_tag(reg: Registry, name: str) -> None:
    bodies = [build_manifest(reg, name, OCI_MANIFEST) for _ in range(6)]
    statuses: list[int] = []

    def push(body: bytes) -> None:
        statuses.append(
            Registry(reg.base_url).put_manifest(name, "race", body, OCI_MANIFEST).status_code
        )

    threads = [threading.Thread(target=push, args=(b,)) for b in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [201] * len(bodies)
    got = reg.request("GET", f"/v2/{name}/manifests/race")
    assert got.status_code == 200
    assert got.content in bodies
    assert reg.request("GET", f"/v2/{name}/tags/list").json()["tags"] == ["race"]
