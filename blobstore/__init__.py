"""Content-addressed blob storage: digests, the BlobStore protocol, and its drivers."""

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
from blobstore.filesystem import FilesystemBlobStore, FilesystemUpload
from blobstore.protocol import (
    BlobInfo,
    BlobReader,
    BlobStore,
    BlobURLs,
    LocalBlobPaths,
    Upload,
)
from blobstore.verify import VerifyingReader

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
]
