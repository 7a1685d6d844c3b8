"""The wire error codes of the OCI distribution spec, each deciding its HTTP status once.

A handler or service raises `RegistryError(CODE, detail=...)`; the error middleware
(`registry.http.errors`) renders it as `{"errors": [{"code", "message", "detail"}]}`. Two
descriptors reuse a spec code with another status, as CNCF Distribution does: an out-of-order
chunk is BLOB_UPLOAD_INVALID with 416, and an oversized manifest is SIZE_INVALID with 413.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class ErrorCode:
    code: str  # spec identifier, e.g. "BLOB_UNKNOWN"
    message: str  # spec default text
    status: int  # decided here, never at a call site


BLOB_UNKNOWN: Final = ErrorCode("BLOB_UNKNOWN", "blob unknown to registry", 404)
BLOB_UPLOAD_INVALID: Final = ErrorCode("BLOB_UPLOAD_INVALID", "blob upload invalid", 400)
BLOB_UPLOAD_UNKNOWN: Final = ErrorCode(
    "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", 404
)
DIGEST_INVALID: Final = ErrorCode(
    "DIGEST_INVALID", "provided digest did not match uploaded content", 400
)
MANIFEST_BLOB_UNKNOWN: Final = ErrorCode(
    "MANIFEST_BLOB_UNKNOWN", "manifest references a manifest or blob unknown to registry", 400
)
MANIFEST_INVALID: Final = ErrorCode("MANIFEST_INVALID", "manifest invalid", 400)
MANIFEST_UNKNOWN: Final = ErrorCode("MANIFEST_UNKNOWN", "manifest unknown to registry", 404)
NAME_INVALID: Final = ErrorCode("NAME_INVALID", "invalid repository name", 400)
NAME_UNKNOWN: Final = ErrorCode("NAME_UNKNOWN", "repository name not known to registry", 404)
SIZE_INVALID: Final = ErrorCode("SIZE_INVALID", "provided length did not match content length", 400)
UNAUTHORIZED: Final = ErrorCode("UNAUTHORIZED", "authentication required", 401)
DENIED: Final = ErrorCode("DENIED", "requested access to the resource is denied", 403)
UNSUPPORTED: Final = ErrorCode("UNSUPPORTED", "the operation is unsupported", 405)
TOOMANYREQUESTS: Final = ErrorCode("TOOMANYREQUESTS", "too many requests", 429)

# Spec codes with a status of their own.
RANGE_INVALID: Final = ErrorCode("BLOB_UPLOAD_INVALID", "requested range not satisfiable", 416)
MANIFEST_TOO_LARGE: Final = ErrorCode("SIZE_INVALID", "manifest exceeds the size limit", 413)
TAG_INVALID: Final = ErrorCode("MANIFEST_INVALID", "invalid tag", 400)
PAGINATION_INVALID: Final = ErrorCode("UNSUPPORTED", "invalid pagination parameter", 400)
BLOB_RANGE_INVALID: Final = ErrorCode(
    "RANGE_NOT_SATISFIABLE", "requested range not satisfiable", 416
)
NOT_FOUND: Final = ErrorCode("NOT_FOUND", "no such endpoint", 404)
METHOD_NOT_ALLOWED: Final = ErrorCode("UNSUPPORTED", "method not allowed on this endpoint", 405)
INTERNAL: Final = ErrorCode("UNKNOWN", "internal server error", 500)
QUOTA_EXCEEDED: Final = ErrorCode("DENIED", "storage quota exceeded", 403)
TAG_IMMUTABLE: Final = ErrorCode("DENIED", "the tag is immutable", 403)
# The pull-through cache (registry.proxy): Distribution's UNAVAILABLE code, gateway statuses.
# (An upstream that fails for uncached content gives MANIFEST_UNKNOWN or BLOB_UNKNOWN, whose
# message clients show; see registry/proxy/upstream_errors.py.)
UPSTREAM_UNAVAILABLE: Final = ErrorCode("UNAVAILABLE", "the upstream registry is unavailable", 503)
UPSTREAM_TIMEOUT: Final = ErrorCode("UNAVAILABLE", "timed out waiting for the upstream", 504)
PROXIED_READ_ONLY: Final = ErrorCode(
    "UNSUPPORTED", "the repository is a pull-through cache of an upstream registry", 405
)

ALL_CODES: Final = (
    BLOB_UNKNOWN,
    BLOB_UPLOAD_INVALID,
    BLOB_UPLOAD_UNKNOWN,
    DIGEST_INVALID,
    MANIFEST_BLOB_UNKNOWN,
    MANIFEST_INVALID,
    MANIFEST_UNKNOWN,
    NAME_INVALID,
    NAME_UNKNOWN,
    SIZE_INVALID,
    UNAUTHORIZED,
    DENIED,
    UNSUPPORTED,
    TOOMANYREQUESTS,
)


class RegistryError(Exception):
    """An error with a wire code. `headers` are added to the error response (e.g. Range)."""

    def __init__(
        self,
        code: ErrorCode,
        *,
        detail: object = None,
        message: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.code = code
        self.detail = detail
        self.message = message or code.message
        self.headers = headers or {}
        super().__init__(f"{code.code}: {self.message}" + (f" ({detail})" if detail else ""))

    def body(self) -> dict[str, object]:
        entry: dict[str, object] = {"code": self.code.code, "message": self.message}
        if self.detail is not None:
            entry["detail"] = self.detail
        return {"errors": [entry]}
