"""The registry's rules and SQL: one service per resource, each built once in create_app."""

from registry.service.blobs import BlobService
from registry.service.catalog import CatalogService
from registry.service.manifests import ManifestService, PutResult, StoredManifest
from registry.service.pulls import PullRecorder
from registry.service.referrers import ReferrerService
from registry.service.tags import Page, TagPage, TagService
from registry.service.uploads import ChunkRange, UploadService, UploadState, range_header

__all__ = [
    "BlobService",
    "CatalogService",
    "ChunkRange",
    "ManifestService",
    "Page",
    "PullRecorder",
    "PutResult",
    "ReferrerService",
    "StoredManifest",
    "TagPage",
    "TagService",
    "UploadService",
    "UploadState",
    "range_header",
]
