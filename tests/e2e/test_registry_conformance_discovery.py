"""Spec workflows, content discovery: referrers (with artifactType filtering), tags/list and
_catalog with n/last/Link pagination. See test_registry_conformance.py for how these run."""

from __future__ import annotations

import json
import os
import re

import pytest
import requests

from tests.e2e import conformance_support as support
from tests.e2e.conformance_support import (
    assert_error,
    build_manifest,
)
from tests.e2e.oci_http import (
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    Registry,
    descriptor,
    digest_of,
    image_manifest,
    index,
)

pytestmark = pytest.mark.e2e
server, reg, name = support.server, support.reg, support.name


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
