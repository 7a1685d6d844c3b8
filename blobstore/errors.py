"""Domain errors of the blobstore.

BlobStoreError
├── InvalidDigest        (also a ValueError: a malformed or unsupported digest string)
├── BlobNotFound         no committed blob has this digest
├── UploadNotFound       no ingest has this id (never begun, committed or aborted)
├── DigestMismatch       the bytes written do not hash to the expected digest
├── SizeMismatch         the bytes written are not the expected length
└── InvalidRange         a byte range that the blob cannot satisfy
"""

from __future__ import annotations


class BlobStoreError(Exception):
    """Base of every error the blobstore raises on purpose."""


class InvalidDigest(BlobStoreError, ValueError):
    """A digest string is malformed, or names an algorithm the store does not support."""

    def __init__(self, value: str, reason: str) -> None:
        super().__init__(f"invalid digest {value!r}: {reason}")
        self.value = value
        self.reason = reason


class BlobNotFound(BlobStoreError):
    def __init__(self, digest: object) -> None:
        super().__init__(f"blob {digest} not found")
        self.digest = digest


class UploadNotFound(BlobStoreError):
    def __init__(self, upload_id: str) -> None:
        super().__init__(f"upload {upload_id!r} not found")
        self.upload_id = upload_id


class DigestMismatch(BlobStoreError):
    def __init__(self, expected: object, actual: object) -> None:
        super().__init__(f"content digest {actual} does not match expected digest {expected}")
        self.expected = expected
        self.actual = actual


class SizeMismatch(BlobStoreError):
    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"content size {actual} does not match expected size {expected}")
        self.expected = expected
        self.actual = actual


class InvalidRange(BlobStoreError):
    def __init__(self, start: int, end: int | None, size: int) -> None:
        shown = "" if end is None else end
        super().__init__(f"range {start}-{shown} not satisfiable for {size} bytes")
        self.start = start
        self.end = end
        self.size = size
