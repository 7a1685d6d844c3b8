"""Manifest parsing: media type decisions, references, subject and artifact type."""

from __future__ import annotations

import json

import pytest

from blobstore import Digest
from registry.errcode import RegistryError
from registry.manifest import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    content_type_of,
    parse_manifest,
)

D1, D2, D3 = ("sha256:" + c * 64 for c in "123")


def _image(**extra: object) -> dict[str, object]:
    return {
        "schemaVersion": 2,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": D1,
            "size": 2,
        },
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": D2, "size": 3}
        ],
        **extra,
    }


def test_image_manifest_references_and_artifact_type() -> None:
    payload = json.dumps(_image(mediaType=OCI_MANIFEST)).encode()
    parsed = parse_manifest(payload, OCI_MANIFEST)
    assert parsed.media_type == OCI_MANIFEST
    assert parsed.digest == Digest.of(payload)
    assert parsed.config is not None
    assert str(parsed.config.digest) == D1
    assert [str(d.digest) for d in parsed.layers] == [D2]
    assert parsed.artifact_type == "application/vnd.oci.image.config.v1+json"
    assert parsed.subject is None


def test_artifact_type_and_subject() -> None:
    subject = {"mediaType": OCI_MANIFEST, "digest": D3, "size": 10}
    doc = _image(
        mediaType=OCI_MANIFEST,
        artifactType="application/x.sig",
        subject=subject,
        annotations={"a": "b"},
    )
    parsed = parse_manifest(json.dumps(doc).encode(), OCI_MANIFEST)
    assert parsed.artifact_type == "application/x.sig"
    assert parsed.subject is not None
    assert str(parsed.subject.digest) == D3
    assert parsed.annotations == {"a": "b"}


@pytest.mark.parametrize(
    ("doc_type", "content_type", "expected"),
    [
        (None, OCI_MANIFEST, OCI_MANIFEST),
        (None, DOCKER_MANIFEST, DOCKER_MANIFEST),
        (None, "", OCI_MANIFEST),
        (None, "application/json", OCI_MANIFEST),
        (DOCKER_MANIFEST, DOCKER_MANIFEST + "; charset=utf-8", DOCKER_MANIFEST),
        (OCI_MANIFEST, "", OCI_MANIFEST),
    ],
)
def test_media_type_decision(doc_type: str | None, content_type: str, expected: str) -> None:
    doc = _image(**({"mediaType": doc_type} if doc_type else {}))
    assert parse_manifest(json.dumps(doc).encode(), content_type).media_type == expected


@pytest.mark.parametrize("index_type", [OCI_INDEX, DOCKER_LIST])
def test_index_children(index_type: str) -> None:
    doc = {
        "schemaVersion": 2,
        "mediaType": index_type,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": D1, "size": 5}],
    }
    parsed = parse_manifest(json.dumps(doc).encode(), index_type)
    assert [str(c.digest) for c in parsed.children] == [D1]
    assert parsed.config is None
    assert parsed.artifact_type is None


def test_index_guessed_without_type() -> None:
    doc = {"schemaVersion": 2, "manifests": []}
    assert parse_manifest(json.dumps(doc).encode(), None).media_type == OCI_INDEX


@pytest.mark.parametrize(
    ("doc", "content_type", "reason"),
    [
        (_image(mediaType=OCI_MANIFEST), DOCKER_MANIFEST, "does not match Content-Type"),
        (
            _image(mediaType="application/vnd.docker.distribution.manifest.v1+json"),
            "",
            "unsupported",
        ),
        ({**_image(), "schemaVersion": 1}, OCI_MANIFEST, "schemaVersion must be 2"),
        ({"schemaVersion": 2, "mediaType": OCI_MANIFEST}, OCI_MANIFEST, "needs a config"),
        (_image(layers="x"), OCI_MANIFEST, "layers must be a list"),
        (_image(annotations={"a": 1}), OCI_MANIFEST, "annotations must map strings"),
        (_image(artifactType=5), OCI_MANIFEST, "artifactType must be a string"),
        (_image(subject="x"), OCI_MANIFEST, "subject must be a descriptor"),
        (
            _image(config={"mediaType": "", "digest": D1, "size": 1}),
            OCI_MANIFEST,
            "config.mediaType",
        ),
        (
            _image(config={"mediaType": "x", "digest": D1, "size": True}),
            OCI_MANIFEST,
            "config.size",
        ),
        (_image(config={"mediaType": "x", "digest": 1, "size": 1}), OCI_MANIFEST, "config.digest"),
    ],
)
def test_invalid(doc: dict[str, object], content_type: str, reason: str) -> None:
    with pytest.raises(RegistryError) as caught:
        parse_manifest(json.dumps(doc).encode(), content_type)
    assert caught.value.code.code == "MANIFEST_INVALID"
    assert reason in str(caught.value.detail)


def test_not_json_and_not_utf8() -> None:
    for payload in (b"{", b"\xff\xfe", b"null"):
        with pytest.raises(RegistryError):
            parse_manifest(payload, OCI_MANIFEST)


def test_sha512_digest() -> None:
    payload = json.dumps(_image()).encode()
    assert parse_manifest(payload, OCI_MANIFEST, "sha512").digest.algorithm == "sha512"


def test_content_type_of() -> None:
    assert content_type_of(" Application/JSON ; charset=utf-8") == "application/json"
    assert content_type_of(None) == ""
