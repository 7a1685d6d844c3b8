"""Manifest parsing and validation: pure functions over bytes, no I/O.

`parse_manifest(payload, content_type)` decides the media type, checks the document's shape,
and returns what the registry records about it: the blobs and manifests it references, its
subject and artifact type. Whether the referenced content exists is the service's business.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from blobstore import Digest, InvalidDigest
from registry.errcode import MANIFEST_INVALID, RegistryError

OCI_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX: Final = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST: Final = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST: Final = "application/vnd.docker.distribution.manifest.list.v2+json"
IMAGE_TYPES: Final = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES: Final = frozenset({OCI_INDEX, DOCKER_LIST})
SUPPORTED_TYPES: Final = IMAGE_TYPES | INDEX_TYPES
NON_DISTRIBUTABLE: Final = (
    "application/vnd.oci.image.layer.nondistributable.",
    "application/vnd.docker.image.rootfs.foreign.",
)
_GENERIC_CONTENT_TYPES: Final = frozenset({"", "application/json", "application/octet-stream"})


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int

    @property
    def distributable(self) -> bool:
        return not self.media_type.startswith(NON_DISTRIBUTABLE)


@dataclass(frozen=True, slots=True)
class ParsedManifest:
    media_type: str
    digest: Digest
    config: Descriptor | None
    layers: tuple[Descriptor, ...]
    children: tuple[Descriptor, ...]
    subject: Descriptor | None
    artifact_type: str | None
    annotations: dict[str, str] | None


def content_type_of(header: str | None) -> str:
    """The media type of a Content-Type header, parameters dropped, lowercased."""
    return (header or "").split(";", 1)[0].strip().lower()


def _invalid(reason: str) -> RegistryError:
    return RegistryError(MANIFEST_INVALID, detail={"reason": reason})


def parse_manifest(
    payload: bytes, content_type: str | None, algorithm: str = "sha256"
) -> ParsedManifest:
    """Validate `payload`; raise MANIFEST_INVALID with the reason when it is not acceptable."""
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _invalid(f"not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise _invalid("a manifest must be a JSON object")
    media_type = _media_type(doc, content_type_of(content_type))
    if doc.get("schemaVersion") != 2:
        raise _invalid("schemaVersion must be 2")
    digest = Digest.of(payload, algorithm)
    subject = _descriptor(doc["subject"], "subject") if "subject" in doc else None
    annotations = _annotations(doc.get("annotations"), "annotations")
    artifact_type = doc.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise _invalid("artifactType must be a string")
    if media_type in INDEX_TYPES:
        children = _descriptor_list(doc.get("manifests"), "manifests")
        return ParsedManifest(
            media_type, digest, None, (), children, subject, artifact_type or None, annotations
        )
    if "config" not in doc:
        raise _invalid("an image manifest needs a config descriptor")
    config = _descriptor(doc["config"], "config")
    layers = _descriptor_list(doc.get("layers", []), "layers")
    return ParsedManifest(
        media_type,
        digest,
        config,
        layers,
        (),
        subject,
        artifact_type or config.media_type,
        annotations,
    )


def _media_type(doc: dict[str, Any], content_type: str) -> str:
    declared = doc.get("mediaType")
    if declared is not None:
        if not isinstance(declared, str):
            raise _invalid("mediaType must be a string")
        if content_type not in _GENERIC_CONTENT_TYPES and content_type != declared:
            raise _invalid(f"mediaType {declared!r} does not match Content-Type {content_type!r}")
        media_type = declared
    elif content_type in SUPPORTED_TYPES:
        media_type = content_type  # e.g. helm: no mediaType field, the Content-Type decides
    elif content_type in _GENERIC_CONTENT_TYPES:
        media_type = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    else:
        media_type = content_type
    if media_type not in SUPPORTED_TYPES:
        raise _invalid(f"unsupported manifest media type {media_type!r}")
    return media_type


def _descriptor(value: object, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise _invalid(f"{where} must be a descriptor object")
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise _invalid(f"{where}.mediaType must be a non-empty string")
    if not isinstance(digest, str):
        raise _invalid(f"{where}.digest must be a string")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _invalid(f"{where}.size must be a non-negative integer")
    try:
        parsed = Digest.parse(digest)
    except InvalidDigest as exc:
        raise _invalid(f"{where}.digest: {exc.reason}") from None
    return Descriptor(media_type, parsed, size)


def _descriptor_list(value: object, where: str) -> tuple[Descriptor, ...]:
    if not isinstance(value, list):
        raise _invalid(f"{where} must be a list of descriptors")
    return tuple(_descriptor(item, f"{where}[{i}]") for i, item in enumerate(value))


def _annotations(value: object, where: str) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _invalid(f"{where} must map strings to strings")
    return dict(value)
