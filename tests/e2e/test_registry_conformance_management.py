"""Spec workflows, content management and names: deleting tags, manifests and blobs; nested
names; invalid names and traversal attempts. See test_registry_conformance.py."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.e2e import conformance_support as support
from tests.e2e.conformance_support import (
    assert_error,
    build_manifest,
    raw_request,
)
from tests.e2e.oci_http import (
    OCI_INDEX,
    OCI_MANIFEST,
    Registry,
    digest_of,
)
from tests.support.server import RunningServer

pytestmark = pytest.mark.e2e
server, reg, name = support.server, support.reg, support.name


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


NAME = re.compile(r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*")
COMPONENT = r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*"


@settings(max_examples=80, deadline=None)
@given(
    candidate=st.one_of(
        st.from_regex(rf"{COMPONENT}(/{COMPONENT}){{0,3}}", fullmatch=True),
        st.text("abcAZ019._-/", min_size=1, max_size=40),
    ).filter(lambda n: len(n) <= 200)
)
def test_name_property(server: RunningServer, candidate: str) -> None:
    """<name> is valid exactly when it matches the spec's expression: valid and unknown is
    404 NAME_UNKNOWN, anything else 400 NAME_INVALID."""
    status, body = raw_request(server, "GET", f"/v2/{candidate}/tags/list")
    code = [e["code"] for e in json.loads(body)["errors"]] if body[:1] == b"{" else []
    if NAME.fullmatch(candidate):
        assert (status, code) == (404, ["NAME_UNKNOWN"]), candidate
    else:
        assert (status, code) == (400, ["NAME_INVALID"]), candidate


def test_malformed_requests_never_get_a_5xx(server: RunningServer) -> None:
    """600 seeded-random requests mixing bad names, references, session ids, query parameters,
    Content-Range, Range, Content-Type and bodies: each is a client error at worst (< 500),
    and the server logs no traceback (checked when the module's server stops)."""
    reg = Registry(server.url)
    body, digest = reg.push_image("conformance/fuzz", "v1")
    upload = reg.start_upload("conformance/fuzz").rsplit("/", 1)[1]
    rng = random.Random(20261128)
    names = ["conformance/fuzz", "conformance/other", "A", "..", "", "a/b/c", "%00", "x" * 300]
    refs = [
        "v1",
        digest,
        "sha256:",
        "sha256:zz",
        "md5:ab",
        "",
        "..",
        "v1%00",
        "a" * 200,
        digest_of(b"x", "sha512"),
    ]
    sessions = [upload, "zz", upload.upper(), "", "..", upload + "0"]
    values = [digest, "sha256:zz", "-1", "0", "9" * 25, "", "conformance/fuzz", "..", "%ff"]
    paths: list[Callable[[str], str]] = [
        lambda n: f"/v2/{n}/blobs/{rng.choice(refs)}",
        lambda n: f"/v2/{n}/manifests/{rng.choice(refs)}",
        lambda n: f"/v2/{n}/blobs/uploads/",
        lambda n: f"/v2/{n}/blobs/uploads/{rng.choice(sessions)}",
        lambda n: f"/v2/{n}/tags/list",
        lambda n: f"/v2/{n}/referrers/{rng.choice(refs)}",
        lambda n: "/v2/_catalog",
    ]
    params = ["digest", "n", "last", "mount", "from", "tag", "artifactType", "digest-algorithm"]
    failures = []
    for _ in range(600):
        path = rng.choice(paths)(rng.choice(names))
        query = "&".join(f"{k}={rng.choice(values)}" for k in rng.sample(params, rng.randint(0, 3)))
        path += f"?{query}" if query else ""
        method = rng.choice(["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"])
        headers = {}
        if rng.random() < 0.5:
            headers["Content-Range"] = rng.choice(["0-0", "5-1", "a-b", "0-" + "9" * 25, "-1-2"])
        if rng.random() < 0.3:
            headers["Range"] = rng.choice(["bytes=0-0", "bytes=x", "bytes=" + "9" * 25 + "-"])
        if rng.random() < 0.5:
            headers["Content-Type"] = rng.choice([OCI_MANIFEST, OCI_INDEX, "text/plain", "x/y;;"])
        data = rng.choice([b"", b"{}", body, b"\x00\xff" * 50, b'{"schemaVersion":2}', b"null"])
        status, _ = raw_request(server, method, path, data, headers)
        if status >= 500:
            failures.append((method, path, headers, data[:20], status))
    assert failures == []
