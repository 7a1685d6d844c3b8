"""Pulls images from OCI and Docker registries into a local store, unpacked as overlay
snapshots. `ImageStore` is the API; the state dir layout is drawn in `puller.store`."""

from puller.decompress import UnpackLimits
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
from puller.platforms import Platform, host_platform, parse_platform
from puller.progress import Phase, ProgressEvent, ProgressSink
from puller.records import ImageRecord
from puller.reference import Reference, default_plain_http, parse_reference
from puller.store import ImageStore, PruneReport, default_root

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
