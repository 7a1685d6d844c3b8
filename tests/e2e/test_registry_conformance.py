"""The OCI distribution-spec workflows, walked over HTTP against a real server process.

This module: determining support, pushing blobs (monolithic, chunked, mounts), pulling blobs.
The others: _manifests (push/pull manifests), _discovery (referrers, tags, catalog),
_management (deletes, repository names).

Organised as the OCI conformance suite is: pull, push, content discovery, content management.
Every status, header and body is asserted as ../shared/spec/distribution/spec.md states it
(section names are quoted in the docstrings). One server serves the whole module; each test
uses its own repository names, so tests are independent of each other's content.

Runs against `berth serve` by default, against CNCF Distribution 2.8 with
BERTH_TEST_TARGET=distribution (which lacks the OCI 1.1 features: referrers, OCI-Subject,
`?tag=`, and some error paths; those tests follow the spec and fail there).
"""

from __future__ import annotations

import os
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.e2e import conformance_support as support
from tests.e2e.conformance_support import (
    OCTET,
    UUID,
    assert_error,
    patch,
)
from tests.e2e.oci_http import (
    Registry,
    digest_of,
    error_codes,
    with_query,
)
from tests.support.server import RunningServer

pytestmark = pytest.mark.e2e
server, reg, name = support.server, support.reg, support.name


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


def test_upload_session_belongs_to_its_repository(reg: Registry, name: str) -> None:
    """A session opened for one repository cannot be read, written, closed or cancelled
    through another repository's URL (which would plant a blob there)."""
    data = b"planted"
    location = reg.start_upload(f"{name}/owner")
    assert f"/{name}/owner/blobs/uploads/" in location
    other = location.replace(f"/{name}/owner/", f"/{name}/intruder/")
    assert_error(reg.request("GET", other), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(patch(reg, other, data, 0), 404, "BLOB_UPLOAD_UNKNOWN")
    put = reg.request("PUT", with_query(other, digest=digest_of(data)), data=data, headers=OCTET)
    assert_error(put, 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(reg.request("DELETE", other), 404, "BLOB_UPLOAD_UNKNOWN")
    assert reg.request("HEAD", f"/v2/{name}/intruder/blobs/{digest_of(data)}").status_code == 404
    status = reg.request("GET", location)
    assert status.status_code == 204
    done = reg.request(
        "PUT",
        with_query(reg.url(status.headers["Location"]), digest=digest_of(data)),
        data=data,
        headers=OCTET,
    )
    assert done.status_code == 201, done.text


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


@pytest.fixture(scope="module")
def range_blob(server: RunningServer) -> str:
    return Registry(server.url).push_blob("conformance/range-property", RANGE_DATA)


def expected_range(spec: tuple[int | None, int | None], size: int) -> tuple[int, int] | None:
    """RFC 9110 §14.1.2: the satisfiable [first, last] of one range, or None (416)."""
    first, last = spec
    if first is None:  # suffix range: the last `last` bytes
        assert last is not None
        return (max(0, size - last), size - 1) if last > 0 else None
    if first >= size:
        return None
    return first, size - 1 if last is None else min(last, size - 1)


@settings(max_examples=60, deadline=None)
@given(
    spec=st.one_of(
        st.tuples(st.integers(0, 12_000), st.none()),
        st.tuples(st.none(), st.integers(0, 12_000)),
        st.integers(0, 12_000).flatmap(
            lambda first: st.tuples(st.just(first), st.integers(first, first + 12_000))
        ),
    )
)
def test_range_property(
    server: RunningServer, range_blob: str, spec: tuple[int | None, int | None]
) -> None:
    """Any single byte range: 206 with exactly those bytes and Content-Range, or 416 with
    `bytes */size` when it lies outside the blob (RFC 9110 §14, as "Pulling blobs" asks)."""
    first, last = spec
    header = f"bytes={'' if first is None else first}-{'' if last is None else last}"
    size = len(RANGE_DATA)
    with Registry(server.url).request(
        "GET",
        f"/v2/conformance/range-property/blobs/{range_blob}",
        headers={"Range": header},
        stream=True,
    ) as got:
        want = expected_range(spec, size)
        if want is None:
            assert got.status_code == 416, header
            assert got.headers["Content-Range"] == f"bytes */{size}"
            return
        start, end = want
        assert got.status_code == 206, header
        assert got.headers["Content-Range"] == f"bytes {start}-{end}/{size}"
        assert got.content == RANGE_DATA[start : end + 1]


@pytest.mark.parametrize("header", ["items=0-10", "pages=1-2"])
def test_range_in_an_unknown_unit_is_ignored(reg: Registry, name: str, header: str) -> None:
    """RFC 9110 §14.2: "An origin server MUST ignore a Range header field that contains a
    range unit it does not understand" (so: 200 and the whole blob)."""
    digest = reg.push_blob(name, RANGE_DATA)
    got = reg.request("GET", f"/v2/{name}/blobs/{digest}", headers={"Range": header})
    assert got.status_code == 200
    assert got.content == RANGE_DATA


@pytest.mark.parametrize("ignored", ["items=0-1", "bytes=0-1,5-6", "bytes=9-0"])
def test_ignored_range_then_range_on_one_connection(reg: Registry, name: str, ignored: str) -> None:
    """A Range the server ignores (200) leaves the keep-alive connection fit for the next
    ranged request (one requests.Session: one connection)."""
    digest = reg.push_blob(name, RANGE_DATA)
    url = f"/v2/{name}/blobs/{digest}"
    first = reg.request("GET", url, headers={"Range": ignored})
    assert first.status_code in (200, 206, 416)
    if first.status_code == 200:
        assert first.content == RANGE_DATA
    second = reg.request("GET", url, headers={"Range": "bytes=0-1"})
    assert (second.status_code, second.content) == (206, RANGE_DATA[:2])
    third = reg.request("GET", url)
    assert (third.status_code, third.content) == (200, RANGE_DATA)


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
