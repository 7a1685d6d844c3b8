"""Content-addressed blob storage: digests, the BlobStore protocol, and its drivers.

Drivers load on first use (PEP 562): digests and errors are all that `berth images` or
`berth ps` need, and the filesystem driver brings asyncio.
"""

import importlib
import typing

from blobstore.digest import SUPPORTED_ALGORITHMS, Digest, is_digest
from blobstore.errors import (
    BlobNotFound,
    BlobStoreError,
    DigestMismatch,
    InvalidDigest,
    InvalidRange,
    SizeMismatch,
    UploadNotFound,
)
from blobstore.protocol import (
    BlobInfo,
    BlobReader,
    BlobStore,
    BlobURLs,
    LocalBlobPaths,
    Upload,
)
from blobstore.upload_ids import new_upload_id
from blobstore.verify import VerifyingReader

if typing.TYPE_CHECKING:
    from blobstore.filesystem import FilesystemBlobStore, FilesystemUpload

_DRIVERS = {
    "FilesystemBlobStore": "blobstore.filesystem",
    "FilesystemUpload": "blobstore.filesystem",
}


def __getattr__(name: str) -> object:
    if name not in _DRIVERS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_DRIVERS[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "SUPPORTED_ALGORITHMS",
    "BlobInfo",
    "BlobNotFound",
    "BlobReader",
    "BlobStore",
    "BlobStoreError",
    "BlobURLs",
    "Digest",
    "DigestMismatch",
    "FilesystemBlobStore",
    "FilesystemUpload",
    "InvalidDigest",
    "InvalidRange",
    "LocalBlobPaths",
    "SizeMismatch",
    "Upload",
    "UploadNotFound",
    "VerifyingReader",
    "is_digest",
    "new_upload_id",
]
