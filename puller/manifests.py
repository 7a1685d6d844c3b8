"""Parsing manifests and indexes (pure): descriptors, platform choice, layer media types."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from blobstore import Digest, InvalidDigest
from puller.errors import UnsupportedManifest
from puller.platforms import Platform, platform_of
from registry_client import mediatypes


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    platform: Platform | None = None


@dataclass(frozen=True, slots=True)
class ImageManifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


def media_type_of(body: bytes, content_type: str | None) -> str:
    """The manifest's own `mediaType` field, else the Content-Type the registry sent."""
    document = _load(body)
    declared = document.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    if content_type:
        return content_type.split(";")[0].strip()
    if "manifests" in document:
        return mediatypes.OCI_INDEX
    return mediatypes.OCI_MANIFEST


def parse_index(body: bytes) -> list[Descriptor]:
    entries = _load(body).get("manifests")
    if not isinstance(entries, list):
        raise UnsupportedManifest("index has no manifests list")
    return [_descriptor(entry) for entry in entries]


def parse_manifest(body: bytes, media_type: str) -> ImageManifest:
    document = _load(body)
    config = _descriptor(document.get("config"))
    layers = document.get("layers")
    if not isinstance(layers, list):
        raise UnsupportedManifest("manifest has no layers list")
    parsed = tuple(_descriptor(layer) for layer in layers)
    for layer in parsed:
        if layer.media_type not in mediatypes.LAYER_COMPRESSION:
            raise UnsupportedManifest(
                f"layer {layer.digest} has unsupported media type {layer.media_type!r}"
            )
    return ImageManifest(media_type, config, parsed)


def manifest_blobs(body: bytes) -> tuple[Descriptor, ...]:
    """The config and layers a manifest references, of any media type (attestation
    manifests carry in-toto layers): what storing or pushing it must carry along."""
    document = _load(body)
    layers = document.get("layers")
    if not isinstance(layers, list):
        raise UnsupportedManifest("manifest has no layers list")
    return (_descriptor(document.get("config")), *(_descriptor(layer) for layer in layers))


def select_platform(entries: list[Descriptor], wanted: Platform) -> Descriptor:
    """The first image manifest in `entries` that runs on `wanted` (attestations skipped)."""
    for entry in entries:
        if entry.platform is None or entry.media_type not in mediatypes.MANIFESTS:
            continue
        if entry.platform.os == "unknown":
            continue
        if wanted.matches(entry.platform):
            return entry
    offered = sorted({str(e.platform) for e in entries if e.platform is not None})
    raise UnsupportedManifest(
        f"no manifest for platform {wanted} (the index offers: {', '.join(offered) or 'none'})"
    )


def _load(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UnsupportedManifest(f"manifest is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise UnsupportedManifest("manifest is not a JSON object")
    if document.get("schemaVersion") == 1:
        raise UnsupportedManifest("Docker schema1 manifests are not supported")
    return document


def _descriptor(value: object) -> Descriptor:
    if not isinstance(value, dict):
        raise UnsupportedManifest("descriptor is not an object")
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media_type, str) or not isinstance(digest, str):
        raise UnsupportedManifest(f"descriptor lacks mediaType or digest: {value}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise UnsupportedManifest(f"descriptor {digest} has an invalid size {size!r}")
    try:
        parsed = Digest.parse(digest)
    except InvalidDigest as exc:
        raise UnsupportedManifest(str(exc)) from None
    return Descriptor(media_type, parsed, size, platform_of(value.get("platform")))
