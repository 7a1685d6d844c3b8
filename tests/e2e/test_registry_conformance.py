"""The OCI distribution-spec workflows, walked over HTTP against a real server process.

Organised as the OCI conformance suite is: pull, push, content discovery, content management.
Every status, header and body is asserted as ../shared/spec/distribution/spec.md states it
(section names are quoted in the docstrings). One server serves the whole module; each test
uses its own repository names, so tests are independent of each other's content.

Runs against `berth serve` by default, against CNCF Distribution 2.8 with
BERTH_TEST_TARGET=distribution (which lacks the OCI 1.1 features: referrers, OCI-Subject,
`?tag=`, and some error paths; those tests follow the spec and fail there).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import threading
from collections.abc import Iterator

import pytest
import requests

from tests.e2e.oci_http import (
    ALL_MANIFEST_TYPES,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    Registry,
    descriptor,
    digest_of,
    dumps,
    error_codes,
    image_manifest,
    index,
    with_query,
)
from tests.support.server import RunningServer, registry_server

pytestmark = pytest.mark.e2e

UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.I)
OCTET = {"Content-Type": "application/octet-stream"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with registry_server(tmp_path_factory.mktemp("conformance")) as running:
        yield running


@pytest.fixture
def reg(server: RunningServer) -> Registry:
    return Registry(server.url)


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """A repository of this test's own, nested as real ones often are."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:80]
    return f"conformance/{slug}"


def assert_error(response: requests.Response, status: int, *codes: str) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    found = error_codes(response)
    assert set(found) & set(codes), (found, codes)


# -- determining support -------------------------------------------------------------------


def test_api_version_check(reg: Registry) -> None:
    """Determining Support: GET /v2/ is 200 (plus the Docker version header clients check)."""
    response = reg.request("GET", "/v2/")
    assert response.status_code == 200
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_every_response_carries_the_api_version_header(reg: Registry, name: str) -> None:
    """Clients (docker) check `Docker-Distribution-API-Version` on responses, errors included."""
    digest = reg.push_blob(name, b"versioned")
    for method, path in [
        ("GET", f"/v2/{name}/blobs/{digest}"),
        ("HEAD", f"/v2/{name}/blobs/{digest}"),
        ("GET", f"/v2/{name}/blobs/{digest_of(b'missing')}"),
        ("POST", f"/v2/{name}/blobs/uploads/"),
        ("GET", f"/v2/{name}/manifests/missing"),
        ("GET", f"/v2/{name}/tags/list"),
        ("GET", "/v2/_catalog"),
    ]:
        response = reg.request(method, path)
        assert response.headers.get("Docker-Distribution-API-Version") == "registry/2.0", (
            method,
            path,
            response.status_code,
        )
        if method == "POST":
            reg.request("DELETE", response.headers["Location"])


# -- push: blobs ---------------------------------------------------------------------------


def test_post_then_put(reg: Registry, name: str) -> None:
    """POST then PUT: 202 + Location with a session UUID; PUT ?digest= gives 201 + Location."""
    data = os.urandom(3000)
    first = reg.request("POST", f"/v2/{name}/blobs/uploads/", data=b"")
    second = reg.request("POST", f"/v2/{name}/blobs/uploads/", data=b"")
    assert first.status_code == second.status_code == 202
    assert UUID.search(first.headers["Location"])
    assert first.headers["Location"] != second.headers["Location"]
    response = reg.request(
        "PUT",
        with_query(reg.url(first.headers["Location"]), digest=digest_of(data)),
        data=data,
        headers=OCTET,
    )
    assert response.status_code == 201, response.text
    assert response.headers["Docker-Content-Digest"] == digest_of(data)
    pulled = reg.request("GET", response.headers["Location"])
    assert pulled.status_code == 200
    assert pulled.content == data
    reg.request("DELETE", second.headers["Location"])


def test_single_post_monolithic_upload(reg: Registry, name: str) -> None:
    """Single POST: `?digest=` with the body gives 201 Created and a pullable Location."""
    data = os.urandom(1234)
    response = reg.request(
        "POST", f"/v2/{name}/blobs/uploads/?digest={digest_of(data)}", data=data, headers=OCTET
    )
    assert response.status_code == 201, response.text
    assert response.headers["Docker-Content-Digest"] == digest_of(data)
    assert reg.request("GET", response.headers["Location"]).content == data


def test_single_post_with_wrong_digest_stores_nothing(reg: Registry, name: str) -> None:
    data, claimed = b"the real bytes", digest_of(b"other bytes")
    response = reg.request(
        "POST", f"/v2/{name}/blobs/uploads/?digest={claimed}", data=data, headers=OCTET
    )
    assert_error(response, 400, "DIGEST_INVALID")
    for digest in (claimed, digest_of(data)):
        assert reg.request("HEAD", f"/v2/{name}/blobs/{digest}").status_code == 404


def test_put_with_wrong_digest_stores_nothing(reg: Registry, name: str) -> None:
    """Pushing blobs: a digest that does not match the content is DIGEST_INVALID (400)."""
    location = reg.start_upload(name)
    claimed = digest_of(b"something else")
    response = reg.request("PUT", with_query(location, digest=claimed), data=b"abc", headers=OCTET)
    assert_error(response, 400, "DIGEST_INVALID")
    assert reg.request("HEAD", f"/v2/{name}/blobs/{claimed}").status_code == 404
    assert reg.request("HEAD", f"/v2/{name}/blobs/{digest_of(b'abc')}").status_code == 404


@pytest.mark.parametrize(
    "bad_digest",
    ["sha256:xyz", "md5:d41d8cd98f00b204e9800998ecf8427e", "sha256:" + "A" * 64, "nodigest"],
)
def test_put_with_invalid_or_unsupported_digest_is_400(
    reg: Registry, name: str, bad_digest: str
) -> None:
    """Pushing blobs: an invalid digest or unsupported algorithm SHOULD be 400 Bad Request."""
    location = reg.start_upload(name)
    response = reg.request("PUT", with_query(location, digest=bad_digest), data=b"x", headers=OCTET)
    assert_error(response, 400, "DIGEST_INVALID")
    reg.request("DELETE", location)


def test_put_without_digest_is_400(reg: Registry, name: str) -> None:
    location = reg.start_upload(name)
    response = reg.request("PUT", location, data=b"x", headers=OCTET)
    assert_error(response, 400, "DIGEST_INVALID")
    reg.request("DELETE", location)


def test_zero_byte_blob(reg: Registry, name: str) -> None:
    empty = digest_of(b"")
    location = reg.start_upload(name)
    response = reg.request("PUT", with_query(location, digest=empty), data=b"", headers=OCTET)
    assert response.status_code == 201, response.text
    head = reg.request("HEAD", f"/v2/{name}/blobs/{empty}")
    assert head.status_code == 200
    assert head.headers["Content-Length"] == "0"
    assert head.headers["Docker-Content-Digest"] == empty
    got = reg.request("GET", f"/v2/{name}/blobs/{empty}")
    assert (got.status_code, got.content) == (200, b"")


def test_sha512_blob(reg: Registry, name: str) -> None:
    """Pushing a blob with a digest algorithm other than sha256 (`digest-algorithm`, end-4c)."""
    data = os.urandom(777)
    digest = digest_of(data, "sha512")
    response = reg.request("POST", f"/v2/{name}/blobs/uploads/?digest-algorithm=sha512", data=b"")
    assert response.status_code == 202, response.text
    put = reg.request(
        "PUT",
        with_query(reg.url(response.headers["Location"]), digest=digest),
        data=data,
        headers=OCTET,
    )
    assert put.status_code == 201, put.text
    assert put.headers["Docker-Content-Digest"] == digest
    got = reg.request("GET", f"/v2/{name}/blobs/{digest}")
    assert (got.status_code, got.content) == (200, data)
    assert got.headers["Docker-Content-Digest"] == digest


# -- push: chunked ---------------------------------------------------------------------------


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


def test_chunked_upload(reg: Registry, name: str) -> None:
    """Pushing a blob in chunks: each PATCH is 202 with Location and `Range: 0-<end>`;
    GET on the session is 204 with the same; the closing PUT ?digest= is 201."""
    data = os.urandom(250_000)
    chunks = [data[0:100_000], data[100_000:200_000], data[200_000:]]
    location = reg.start_upload(name)
    offset = 0
    for chunk in chunks:
        response = patch(reg, location, chunk, offset)
        offset += len(chunk)
        assert response.status_code == 202, response.text
        assert response.headers["Range"] == f"0-{offset - 1}"
        location = reg.url(response.headers["Location"])
        assert UUID.search(location)
        status = reg.request("GET", location)
        assert status.status_code == 204
        assert status.headers["Range"] == f"0-{offset - 1}"
        location = reg.url(status.headers["Location"])
    done = reg.request("PUT", with_query(location, digest=digest_of(data)), data=b"")
    assert done.status_code == 201, done.text
    assert done.headers["Docker-Content-Digest"] == digest_of(data)
    assert reg.request("GET", done.headers["Location"]).content == data


def test_chunked_upload_with_final_chunk_in_put(reg: Registry, name: str) -> None:
    data = os.urandom(5000)
    location = reg.url(patch(reg, reg.start_upload(name), data[:3000], 0).headers["Location"])
    done = reg.request(
        "PUT",
        with_query(location, digest=digest_of(data)),
        data=data[3000:],
        headers={**OCTET, "Content-Range": "3000-4999", "Content-Length": "2000"},
    )
    assert done.status_code == 201, done.text
    assert reg.request("GET", f"/v2/{name}/blobs/{digest_of(data)}").content == data


def test_streamed_patch_without_content_range(reg: Registry, name: str) -> None:
    """The docker engine's flow: one PATCH without Content-Range, then PUT ?digest=."""
    data = os.urandom(70_000)
    location = reg.start_upload(name)
    response = reg.request(
        "PATCH", location, data=iter([data[:30_000], data[30_000:]]), headers=OCTET
    )
    assert response.status_code == 202, response.text
    assert response.headers["Range"] == f"0-{len(data) - 1}"
    done = reg.request(
        "PUT", with_query(reg.url(response.headers["Location"]), digest=digest_of(data))
    )
    assert done.status_code == 201, done.text
    assert reg.request("GET", f"/v2/{name}/blobs/{digest_of(data)}").content == data


def test_out_of_order_chunk_is_416_and_the_session_stays_usable(reg: Registry, name: str) -> None:
    """ "If a chunk is uploaded out of order, the registry MUST respond with 416";
    "To get the current status after a 416 error, issue a GET request"."""
    data = os.urandom(3000)
    location = reg.url(patch(reg, reg.start_upload(name), data[:1000], 0).headers["Location"])
    skipped = patch(reg, location, data[2000:], 2000)
    assert skipped.status_code == 416, skipped.text
    repeated = patch(reg, location, data[:1000], 0)
    assert repeated.status_code == 416, repeated.text
    status = reg.request("GET", location)
    assert status.status_code == 204
    assert status.headers["Range"] == "0-999"
    location = reg.url(status.headers["Location"])
    resumed = patch(reg, location, data[1000:2000], 1000)
    assert resumed.status_code == 202, resumed.text
    assert resumed.headers["Range"] == "0-1999"
    location = reg.url(resumed.headers["Location"])
    late_final = reg.request(
        "PUT",
        with_query(location, digest=digest_of(data)),
        data=data[2500:],
        headers={**OCTET, "Content-Range": "2500-2999", "Content-Length": "500"},
    )
    assert late_final.status_code == 416, late_final.text
    status = reg.request("GET", location)
    assert (status.status_code, status.headers["Range"]) == (204, "0-1999")
    done = reg.request(
        "PUT",
        with_query(reg.url(status.headers["Location"]), digest=digest_of(data)),
        data=data[2000:],
        headers={**OCTET, "Content-Range": "2000-2999", "Content-Length": "1000"},
    )
    assert done.status_code == 201, done.text
    assert reg.request("GET", f"/v2/{name}/blobs/{digest_of(data)}").content == data


def race_patches(base_url: str, location: str, chunks: dict[str, bytes]) -> dict[str, int]:
    """PATCH every chunk at offset 0 at the same moment; the status each one got."""
    results: dict[str, int] = {}

    def send(key: str) -> None:
        results[key] = patch(Registry(base_url), location, chunks[key], 0).status_code

    threads = [threading.Thread(target=send, args=(key,)) for key in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_patches_at_one_offset_accept_exactly_one(reg: Registry, name: str) -> None:
    """A client that retries a chunk while the first attempt is still in flight: both
    PATCHes claim `Content-Range: 0-…`; once one is accepted, the other is out of order (416).
    The session must end with exactly the accepted chunk, never both appended."""
    for _attempt in range(8):
        location = reg.start_upload(name)
        chunks = {"a": os.urandom(2 << 20), "b": os.urandom(2 << 20)}
        results = race_patches(reg.base_url, location, chunks)
        assert sorted(results.values()) == [202, 416], results
        status = reg.request("GET", location)
        assert status.headers["Range"] == f"0-{(2 << 20) - 1}"
        (winner,) = [chunks[k] for k, code in results.items() if code == 202]
        done = reg.request(
            "PUT", with_query(reg.url(status.headers["Location"]), digest=digest_of(winner))
        )
        assert done.status_code == 201, done.text


def test_unsupported_digest_algorithm_is_400(reg: Registry, name: str) -> None:
    """end-4c fails with 400: "if the client provided digest … uses an unsupported algorithm,
    the registry SHOULD respond with … 400 Bad Request"."""
    response = reg.request("POST", f"/v2/{name}/blobs/uploads/?digest-algorithm=md5", data=b"")
    assert response.status_code == 400, response.text
    error_codes(response)


def test_upload_status_and_cancel(reg: Registry, name: str) -> None:
    """GET on a fresh session is 204; DELETE cancels (204); the session is then unknown (404)."""
    location = reg.start_upload(name)
    status = reg.request("GET", location)
    assert status.status_code == 204
    assert UUID.search(status.headers["Location"])
    cancelled = reg.request("DELETE", location, headers={"Content-Length": "0"})
    assert cancelled.status_code == 204
    assert_error(reg.request("GET", location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(patch(reg, location, b"late", 0), 404, "BLOB_UPLOAD_UNKNOWN")


def test_unknown_upload_session(reg: Registry, name: str) -> None:
    unknown = f"/v2/{name}/blobs/uploads/3f1c9a52-7a8e-4c1b-9d0e-5b6a7c8d9e0f"
    assert_error(reg.request("GET", unknown), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(
        reg.request("PUT", with_query(reg.url(unknown), digest=digest_of(b""))),
        404,
        "BLOB_UPLOAD_UNKNOWN",
    )
    assert_error(reg.request("DELETE", unknown), 404, "BLOB_UPLOAD_UNKNOWN")


def test_completed_session_is_closed(reg: Registry, name: str) -> None:
    data = b"once"
    location = reg.start_upload(name)
    reg.request("PUT", with_query(location, digest=digest_of(data)), data=data, headers=OCTET)
    assert_error(reg.request("GET", location), 404, "BLOB_UPLOAD_UNKNOWN")


def test_concurrent_pushes_of_the_same_blob(reg: Registry, name: str) -> None:
    """Layer Upload De-duplication: simultaneous uploads of one layer all succeed."""
    data = os.urandom(300_000)
    statuses: list[int] = []

    def push() -> None:
        client = Registry(reg.base_url)
        location = client.start_upload(name)
        response = client.request(
            "PUT", with_query(location, digest=digest_of(data)), data=data, headers=OCTET
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=push) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [201] * 8
    assert reg.request("GET", f"/v2/{name}/blobs/{digest_of(data)}").content == data


# -- push: mounts --------------------------------------------------------------------------


def test_cross_repository_mount(reg: Registry, name: str) -> None:
    """Mounting a blob from another repository: 201 with Location and Docker-Content-Digest."""
    data = os.urandom(2000)
    digest = reg.push_blob(f"{name}/source", data)
    target = f"{name}/target"
    assert reg.request("HEAD", f"/v2/{target}/blobs/{digest}").status_code == 404
    response = reg.request("POST", f"/v2/{target}/blobs/uploads/?mount={digest}&from={name}/source")
    assert response.status_code == 201, response.text
    assert response.headers["Docker-Content-Digest"] == digest
    assert reg.request("GET", response.headers["Location"]).content == data
    assert reg.request("GET", f"/v2/{target}/blobs/{digest}").content == data


def test_mount_without_from(reg: Registry, name: str) -> None:
    """ "The registry MAY treat the `from` parameter as optional" (Berth does)."""
    data = os.urandom(2000)
    digest = reg.push_blob(f"{name}/source", data)
    response = reg.request("POST", f"/v2/{name}/target/blobs/uploads/?mount={digest}")
    assert response.status_code == 201, response.text
    assert response.headers["Docker-Content-Digest"] == digest
    assert reg.request("GET", f"/v2/{name}/target/blobs/{digest}").content == data


@pytest.mark.parametrize("case", ["blob-not-in-source", "unknown-digest"])
def test_mount_that_cannot_happen_starts_an_upload(reg: Registry, name: str, case: str) -> None:
    """ "If a registry … is unable to mount the requested blob, it SHOULD return a 202"."""
    data = os.urandom(100)
    if case == "blob-not-in-source":
        digest = reg.push_blob(f"{name}/elsewhere", data)
        reg.push_blob(f"{name}/source", b"something")
    else:
        digest = digest_of(data)
    response = reg.request(
        "POST", f"/v2/{name}/target/blobs/uploads/?mount={digest}&from={name}/source"
    )
    assert response.status_code == 202, response.text
    location = reg.url(response.headers["Location"])
    assert reg.request("HEAD", f"/v2/{name}/target/blobs/{digest}").status_code == 404
    done = reg.request("PUT", with_query(location, digest=digest), data=data, headers=OCTET)
    assert done.status_code == 201, done.text


# -- pull: blobs ---------------------------------------------------------------------------


def test_blob_head_and_get(reg: Registry, name: str) -> None:
    """Pulling blobs / Checking if content exists: 200 with Docker-Content-Digest and
    Content-Length; HEAD has no body."""
    data = os.urandom(4096)
    digest = reg.push_blob(name, data)
    head = reg.request("HEAD", f"/v2/{name}/blobs/{digest}")
    assert head.status_code == 200
    assert head.headers["Docker-Content-Digest"] == digest
    assert head.headers["Content-Length"] == str(len(data))
    assert head.content == b""
    got = reg.request("GET", f"/v2/{name}/blobs/{digest}")
    assert got.status_code == 200
    assert got.headers["Docker-Content-Digest"] == digest
    assert got.headers["Content-Length"] == str(len(data))
    assert "Content-Encoding" not in got.headers  # the bytes on the wire are the blob
    assert got.content == data


def test_missing_blob_is_404(reg: Registry, name: str) -> None:
    reg.push_blob(name, b"the repository exists")
    missing = digest_of(b"never pushed")
    assert_error(reg.request("GET", f"/v2/{name}/blobs/{missing}"), 404, "BLOB_UNKNOWN")
    head = reg.request("HEAD", f"/v2/{name}/blobs/{missing}")
    assert (head.status_code, head.content) == (404, b"")


def test_blob_of_another_repository_is_not_visible(reg: Registry, name: str) -> None:
    digest = reg.push_blob(f"{name}/owner", b"private to its repository")
    reg.push_blob(f"{name}/other", b"the other repository exists")
    assert_error(reg.request("GET", f"/v2/{name}/other/blobs/{digest}"), 404, "BLOB_UNKNOWN")


@pytest.mark.parametrize("bad", ["sha256:xyz", "md5:d41d8cd98f00b204e9800998ecf8427e"])
def test_get_blob_with_invalid_digest(reg: Registry, name: str, bad: str) -> None:
    response = reg.request("GET", f"/v2/{name}/blobs/{bad}")
    assert response.status_code in (400, 404), response.text
    assert set(error_codes(response)) & {"DIGEST_INVALID", "BLOB_UNKNOWN", "NAME_UNKNOWN"}


RANGE_DATA = bytes(range(256)) * 40  # 10240 bytes


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=1-3", 1, 3),
        ("bytes=10000-", 10000, 10239),
        ("bytes=-40", 10200, 10239),
        ("bytes=100-99999", 100, 10239),
    ],
)
def test_range_get_is_206(reg: Registry, name: str, header: str, start: int, end: int) -> None:
    """Pulling blobs: "A registry SHOULD support the Range request header" (RFC 9110 §14)."""
    digest = reg.push_blob(name, RANGE_DATA)
    got = reg.request("GET", f"/v2/{name}/blobs/{digest}", headers={"Range": header})
    assert got.status_code == 206, got.text
    assert got.headers["Content-Range"] == f"bytes {start}-{end}/{len(RANGE_DATA)}"
    assert got.headers["Content-Length"] == str(end - start + 1)
    assert got.content == RANGE_DATA[start : end + 1]


@pytest.mark.parametrize("header", ["items=0-10", "pages=1-2"])
def test_range_in_an_unknown_unit_is_ignored(reg: Registry, name: str, header: str) -> None:
    """RFC 9110 §14.2: "An origin server MUST ignore a Range header field that contains a
    range unit it does not understand" (so: 200 and the whole blob)."""
    digest = reg.push_blob(name, RANGE_DATA)
    got = reg.request("GET", f"/v2/{name}/blobs/{digest}", headers={"Range": header})
    assert got.status_code == 200
    assert got.content == RANGE_DATA


def test_several_satisfiable_ranges_are_not_416(reg: Registry, name: str) -> None:
    """RFC 9110 §14.2 lets a server ignore a multi-range request (200, whole blob) or answer
    206 multipart/byteranges; 416 is only for ranges that do not overlap the blob at all."""
    digest = reg.push_blob(name, RANGE_DATA)
    got = reg.request("GET", f"/v2/{name}/blobs/{digest}", headers={"Range": "bytes=0-1,5-6"})
    assert got.status_code in (200, 206), got.status_code
    if got.status_code == 200:
        assert got.content == RANGE_DATA
    else:
        assert got.headers["Content-Type"].startswith("multipart/byteranges")
        assert RANGE_DATA[0:2] in got.content
        assert RANGE_DATA[5:7] in got.content


@pytest.mark.parametrize("header", ["bytes=10240-", "bytes=20000-20010"])
def test_unsatisfiable_range_is_416(reg: Registry, name: str, header: str) -> None:
    """RFC 9110 §15.5.17: 416 with `Content-Range: bytes */<size>`."""
    digest = reg.push_blob(name, RANGE_DATA)
    with reg.request(
        "GET", f"/v2/{name}/blobs/{digest}", headers={"Range": header}, stream=True
    ) as got:
        assert got.status_code == 416
        assert got.headers["Content-Range"] == f"bytes */{len(RANGE_DATA)}"


# -- push and pull: manifests ------------------------------------------------------------


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


def test_manifest_over_4_mib_is_413(reg: Registry, name: str) -> None:
    """ "A registry SHOULD enforce some limit … respond … with 413 Payload Too Large"."""
    config = b'{"architecture":"amd64","os":"linux"}'
    reg.push_blob(name, config)
    padding = "x" * (4 * 1024 * 1024)
    body = dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [],
            "annotations": {"padding": padding},
        }
    )
    put = reg.put_manifest(name, "huge", body, OCI_MANIFEST)
    assert put.status_code == 413, put.text[:300]
    assert reg.request("HEAD", f"/v2/{name}/manifests/huge").status_code == 404


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


# -- referrers --------------------------------------------------------------------------------


def push_referrer(
    reg: Registry,
    name: str,
    subject: bytes,
    *,
    artifact_type: str | None,
    config_type: str = OCI_EMPTY,
    annotations: dict[str, str] | None = None,
) -> tuple[bytes, requests.Response]:
    config = b"{}" if config_type == OCI_EMPTY else json.dumps({"t": config_type}).encode()
    layer = os.urandom(64)
    reg.push_blob(name, config)
    reg.push_blob(name, layer)
    body = image_manifest(
        config,
        [layer],
        subject=descriptor(OCI_MANIFEST, subject),
        artifact_type=artifact_type,
        annotations=annotations,
        config_type=config_type,
    )
    return body, reg.put_manifest(name, digest_of(body), body, OCI_MANIFEST)


def test_manifest_with_subject_returns_oci_subject(reg: Registry, name: str) -> None:
    """Pushing Manifests with Subject: OCI-Subject: <subject digest>, even when the subject
    does not exist yet ("MUST initially accept")."""
    subject = image_manifest(b"{}", [b"subject pushed later"])
    _, put = push_referrer(reg, name, subject, artifact_type="application/vnd.test.sig")
    assert put.status_code == 201, put.text
    assert put.headers["OCI-Subject"] == digest_of(subject)


def test_referrers_list_and_filter(reg: Registry, name: str) -> None:
    """Listing Referrers: an OCI index of descriptors with artifactType (or the config's
    mediaType when absent) and annotations; ?artifactType= filters, with OCI-Filters-Applied."""
    subject, subject_digest = reg.push_image(name, "base")
    sbom, _ = push_referrer(
        reg,
        name,
        subject,
        artifact_type="application/vnd.test.sbom",
        annotations={"org.example.sbom.format": "json"},
    )
    sig, _ = push_referrer(reg, name, subject, artifact_type="application/vnd.test.sig")
    legacy, _ = push_referrer(
        reg, name, subject, artifact_type=None, config_type="application/vnd.test.legacy.config"
    )
    idx_body = index(
        [(OCI_MANIFEST, subject)],
        subject=descriptor(OCI_MANIFEST, subject),
        annotations={"org.example.kind": "index"},
    )
    put = reg.put_manifest(name, digest_of(idx_body), idx_body, OCI_INDEX)
    assert put.status_code == 201, put.text
    assert put.headers["OCI-Subject"] == subject_digest
    _unrelated, _ = reg.push_image(name, "unrelated", seed="x")
    # A referrer of the same subject in another repository belongs to that repository only.
    reg.push_image(f"{name}/other", "base")
    push_referrer(reg, f"{name}/other", subject, artifact_type="application/vnd.test.sig")

    response = reg.request("GET", f"/v2/{name}/referrers/{subject_digest}")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == OCI_INDEX
    listing = response.json()
    assert listing["schemaVersion"] == 2
    assert listing["mediaType"] == OCI_INDEX
    by_digest = {d["digest"]: d for d in listing["manifests"]}
    assert by_digest == {
        digest_of(sbom): {
            **descriptor(OCI_MANIFEST, sbom),
            "artifactType": "application/vnd.test.sbom",
            "annotations": {"org.example.sbom.format": "json"},
        },
        digest_of(sig): {
            **descriptor(OCI_MANIFEST, sig),
            "artifactType": "application/vnd.test.sig",
        },
        digest_of(legacy): {
            **descriptor(OCI_MANIFEST, legacy),
            "artifactType": "application/vnd.test.legacy.config",
        },
        digest_of(idx_body): {
            **descriptor(OCI_INDEX, idx_body),
            "annotations": {"org.example.kind": "index"},
        },
    }

    filtered = reg.request(
        "GET",
        f"/v2/{name}/referrers/{subject_digest}",
        params={"artifactType": "application/vnd.test.sig"},
    )
    assert filtered.status_code == 200
    assert filtered.headers["OCI-Filters-Applied"] == "artifactType"
    assert [d["digest"] for d in filtered.json()["manifests"]] == [digest_of(sig)]


def test_referrers_of_a_digest_without_referrers(reg: Registry, name: str) -> None:
    """ "If a query results in no matching referrers, an empty manifest list MUST be returned"
    (and a registry supporting the API MUST NOT answer 404)."""
    reg.push_image(name, "lonely")
    nobody = digest_of(b"nothing refers to this")
    response = reg.request("GET", f"/v2/{name}/referrers/{nobody}")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == OCI_INDEX
    assert response.json() == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}


def test_referrers_with_invalid_digest_is_400(reg: Registry, name: str) -> None:
    reg.push_image(name, "x")
    response = reg.request("GET", f"/v2/{name}/referrers/sha256:not-hex")
    assert response.status_code == 400, response.text


def test_deleted_referrer_leaves_the_list(reg: Registry, name: str) -> None:
    subject, subject_digest = reg.push_image(name, "base")
    sig, _ = push_referrer(reg, name, subject, artifact_type="application/vnd.test.sig")
    assert reg.request("DELETE", f"/v2/{name}/manifests/{digest_of(sig)}").status_code == 202
    listing = reg.request("GET", f"/v2/{name}/referrers/{subject_digest}").json()
    assert listing["manifests"] == []


# -- content discovery: tags and catalog ---------------------------------------------------


TAGS = ["1.0", "1.1", "2.0", "Latest", "a", "b_c", "latest", "z-9"]


@pytest.fixture
def tagged(reg: Registry, name: str) -> str:
    body = build_manifest(reg, name, OCI_MANIFEST)
    for tag in reversed(TAGS):
        assert reg.put_manifest(name, tag, body, OCI_MANIFEST).status_code == 201
    return name


def test_tags_list(reg: Registry, tagged: str) -> None:
    """Listing Tags: 200, {"name", "tags"} in lexical order."""
    response = reg.request("GET", f"/v2/{tagged}/tags/list")
    assert response.status_code == 200
    assert response.json() == {"name": tagged, "tags": sorted(TAGS)}


def test_tags_list_pagination_with_link(reg: Registry, tagged: str) -> None:
    """`n` returns exactly n tags and a Link rel="next" while more remain; following the
    links walks the whole list once, in order."""
    seen: list[str] = []
    url = f"/v2/{tagged}/tags/list?n=3"
    while True:
        response = reg.request("GET", url)
        assert response.status_code == 200
        page = response.json()["tags"]
        seen += page
        link = response.headers.get("Link")
        if link is None:
            break
        assert len(page) == 3
        match = re.fullmatch(r'<([^>]+)>;\s*rel="next"', link)
        assert match, link
        url = match.group(1)
    assert seen == sorted(TAGS)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("n=2&last=1.1", ["2.0", "Latest"]),
        ("last=b_c", ["latest", "z-9"]),
        ("n=100", sorted(TAGS)),
        ("n=2&last=z-9", []),
        ("last=Latest&n=1", ["a"]),
    ],
)
def test_tags_list_n_and_last(reg: Registry, tagged: str, query: str, expected: list[str]) -> None:
    response = reg.request("GET", f"/v2/{tagged}/tags/list?{query}")
    assert response.status_code == 200
    assert response.json() == {"name": tagged, "tags": expected}


def test_tags_list_n_zero(reg: Registry, tagged: str) -> None:
    """ "When `n` is zero, this endpoint MUST return an empty list, and MUST NOT include a
    Link header"."""
    response = reg.request("GET", f"/v2/{tagged}/tags/list?n=0")
    assert response.status_code == 200
    assert response.json()["tags"] == []
    assert "Link" not in response.headers


def test_tags_list_of_unknown_repository(reg: Registry, name: str) -> None:
    assert_error(reg.request("GET", f"/v2/{name}/none/tags/list"), 404, "NAME_UNKNOWN")


def test_catalog_pagination(reg: Registry, name: str) -> None:
    for suffix in ("x", "y", "z/deeper"):
        reg.push_blob(f"{name}/{suffix}", b"catalog")
        reg.push_image(f"{name}/{suffix}", "1")
    full = reg.request("GET", "/v2/_catalog")
    assert full.status_code == 200
    everything = full.json()["repositories"]
    assert everything == sorted(everything)
    assert {f"{name}/x", f"{name}/y", f"{name}/z/deeper"} <= set(everything)
    seen: list[str] = []
    url = "/v2/_catalog?n=2"
    while True:
        response = reg.request("GET", url)
        assert response.status_code == 200
        page = response.json()["repositories"]
        seen += page
        link = response.headers.get("Link")
        if link is None:
            break
        assert len(page) == 2
        match = re.fullmatch(r'<([^>]+)>;\s*rel="next"', link)
        assert match, link
        url = match.group(1)
    assert seen == everything
    after = reg.request("GET", f"/v2/_catalog?n=1&last={name}/x").json()["repositories"]
    assert after == [f"{name}/y"]


# -- content management ------------------------------------------------------------------


def test_delete_tag(reg: Registry, name: str) -> None:
    """Deleting tags: 202; the tag is gone, the manifest stays reachable by digest."""
    body, digest = reg.push_image(name, "doomed")
    reg.put_manifest(name, "kept", body, OCI_MANIFEST)
    response = reg.request("DELETE", f"/v2/{name}/manifests/doomed")
    assert response.status_code == 202, response.text
    assert_error(reg.request("GET", f"/v2/{name}/manifests/doomed"), 404, "MANIFEST_UNKNOWN")
    assert reg.request("GET", f"/v2/{name}/manifests/{digest}").content == body
    assert reg.request("GET", f"/v2/{name}/manifests/kept").content == body
    assert reg.request("GET", f"/v2/{name}/tags/list").json()["tags"] == ["kept"]


def test_delete_manifest(reg: Registry, name: str) -> None:
    """Deleting Manifests: 202; the digest and every tag pointing to it are then 404."""
    _, digest = reg.push_image(name, "t1")
    _, other = reg.push_image(name, "other", seed="other")
    reg.put_manifest(
        name, "t2", reg.request("GET", f"/v2/{name}/manifests/t1").content, OCI_MANIFEST
    )
    response = reg.request("DELETE", f"/v2/{name}/manifests/{digest}")
    assert response.status_code == 202, response.text
    for reference in (digest, "t1", "t2"):
        assert_error(
            reg.request("GET", f"/v2/{name}/manifests/{reference}"), 404, "MANIFEST_UNKNOWN"
        )
    assert reg.request("GET", f"/v2/{name}/manifests/{other}").status_code == 200
    assert_error(reg.request("DELETE", f"/v2/{name}/manifests/{digest}"), 404, "MANIFEST_UNKNOWN")


def test_delete_manifest_of_unknown_repository(reg: Registry, name: str) -> None:
    response = reg.request("DELETE", f"/v2/{name}/never/manifests/{digest_of(b'x')}")
    assert_error(response, 404, "NAME_UNKNOWN", "MANIFEST_UNKNOWN")


def test_delete_blob(reg: Registry, name: str) -> None:
    """Deleting Blobs: 202; then 404 for GET and for a second DELETE."""
    digest = reg.push_blob(name, b"blob to delete")
    response = reg.request("DELETE", f"/v2/{name}/blobs/{digest}")
    assert response.status_code == 202, response.text
    assert_error(reg.request("GET", f"/v2/{name}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    assert_error(reg.request("DELETE", f"/v2/{name}/blobs/{digest}"), 404, "BLOB_UNKNOWN")


# -- names ---------------------------------------------------------------------------------


def test_nested_repository_names(reg: Registry, name: str) -> None:
    deep = f"{name}/a/b/c"
    body, _ = reg.push_image(deep, "v1")
    assert reg.request("GET", f"/v2/{deep}/manifests/v1").content == body
    assert reg.request("GET", f"/v2/{deep}/tags/list").json() == {"name": deep, "tags": ["v1"]}
    assert reg.request("HEAD", f"/v2/{name}/a/b/manifests/v1").status_code == 404


def raw_request(server: RunningServer, method: str, path: str) -> tuple[int, bytes]:
    """Send the path byte for byte (requests would normalise `..` away)."""
    connection = http.client.HTTPConnection(server.host, timeout=10)
    try:
        connection.request(method, path, headers={"Content-Length": "0"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize(
    "path",
    [
        "/v2/conformance/../etc/tags/list",
        "/v2/../conformance/tags/list",
        "/v2/conformance/%2e%2e/x/tags/list",
        "/v2/conformance/%2E%2E/%2E%2E/manifests/latest",
        "/v2/Upper/Case/tags/list",
        "/v2/a//b/tags/list",
        "/v2/-lead/tags/list",
        "/v2/trail-/tags/list",
        "/v2/a/./b/tags/list",
        "/v2/a..b/blobs/uploads/",
    ],
)
def test_invalid_names_are_name_invalid(server: RunningServer, path: str) -> None:
    """<name> MUST match the spec's regular expression; anything else (traversal included) is
    NAME_INVALID."""
    method = "POST" if path.endswith("/uploads/") else "GET"
    status, body = raw_request(server, method, path)
    assert status == 400, (status, body)
    assert [e["code"] for e in json.loads(body)["errors"]] == ["NAME_INVALID"]


@pytest.mark.parametrize(
    "path",
    [
        "/v2/../../../../etc/passwd",
        "/v2/x/blobs/../../../../etc/passwd",
        "/v2/x/blobs/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/v2/x/manifests/..%2f..%2f..%2f..%2fetc%2fpasswd",
    ],
)
def test_traversal_never_reaches_the_filesystem(server: RunningServer, path: str) -> None:
    status, body = raw_request(server, "GET", path)
    assert status in (301, 400, 404), (status, body)
    assert b"root:" not in body


def test_invalid_tag_is_not_created(reg: Registry, name: str) -> None:
    """A tag MUST match `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`."""
    body = build_manifest(reg, name, OCI_MANIFEST)
    for tag in (".hidden", "-dash", "a" * 129, "sp%20ace"):
        put = reg.put_manifest(name, tag, body, OCI_MANIFEST)
        assert put.status_code in (400, 404), (tag, put.status_code)
    assert reg.put_manifest(name, "ok", body, OCI_MANIFEST).status_code == 201
    assert reg.request("GET", f"/v2/{name}/tags/list").json()["tags"] == ["ok"]
