"""Pulls images from OCI and Docker registries into a local store, unpacked as overlay
snapshots, and tags and pushes them back out as stored (`puller.pushing`). `ImageStore` is
the API; the state dir layout is drawn in `puller.store`.

Names load on first use (PEP 562), so that `berth images` or `berth run` of a pulled
image imports only what it touches.
"""

import importlib
import typing

__all__ = [
    "ImageStore",
    "UnpackLimits",
    "ImageRecord",
    "PruneReport",
    "default_root",
    "Reference",
    "parse_reference",
    "default_plain_http",
    "Platform",
    "parse_platform",
    "host_platform",
    "Phase",
    "ProgressEvent",
    "ProgressSink",
    "PullerError",
    "InvalidReference",
    "InvalidPlatform",
    "RegistryError",
    "AuthenticationFailed",
    "NotFound",
    "UnsupportedManifest",
    "ImageNotFound",
    "LayerRejected",
    "LayerTooLarge",
    "DecompressionBomb",
    "DiffIDMismatch",
]

_EXPORTS: dict[str, str] = {
    "UnpackLimits": "puller.limits",
    "AuthenticationFailed": "puller.errors",
    "DecompressionBomb": "puller.errors",
    "DiffIDMismatch": "puller.errors",
    "ImageNotFound": "puller.errors",
    "InvalidPlatform": "puller.errors",
    "InvalidReference": "puller.errors",
    "LayerRejected": "puller.errors",
    "LayerTooLarge": "puller.errors",
    "NotFound": "puller.errors",
    "PullerError": "puller.errors",
    "RegistryError": "puller.errors",
    "UnsupportedManifest": "puller.errors",
    "Platform": "puller.platforms",
    "host_platform": "puller.platforms",
    "parse_platform": "puller.platforms",
    "Phase": "puller.progress",
    "ProgressEvent": "puller.progress",
    "ProgressSink": "puller.progress",
    "ImageRecord": "puller.records",
    "Reference": "registry_client.reference",
    "default_plain_http": "registry_client.reference",
    "parse_reference": "registry_client.reference",
    "ImageStore": "puller.store",
    "PruneReport": "puller.store",
    "default_root": "puller.stateroot",
}

if typing.TYPE_CHECKING:
    from puller.errors import (
        AuthenticationFailed,
        DecompressionBomb,
        DiffIDMismatch,
        ImageNotFound,
        InvalidPlatform,
        InvalidReference,
        LayerRejected,
        LayerTooLarge,
        NotFound,
        PullerError,
        RegistryError,
        UnsupportedManifest,
    )
    from puller.limits import UnpackLimits
    from puller.platforms import Platform, host_platform, parse_platform
    from puller.progress import Phase, ProgressEvent, ProgressSink
    from puller.records import ImageRecord
    from puller.stateroot import default_root
    from puller.store import ImageStore, PruneReport
    from registry_client.reference import Reference, default_plain_http, parse_reference


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
