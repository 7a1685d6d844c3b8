"""The one place errors become responses: `{"errors": [...]}` with the code's own status.

Domain errors of the blobstore map to wire codes through `DOMAIN_ERRORS`, walking the
exception's MRO so a subclass finds its parent's code; aiohttp's own answers for an unknown
route or a wrong method become OCI errors through `HTTP_ERRORS`. Every response, errors
included, carries `Docker-Distribution-API-Version: registry/2.0`, and a `Server` header that
names no versions.
"""

from __future__ import annotations

import json
import logging
from typing import Final

from aiohttp import web, web_response
from aiohttp.typedefs import Handler

from blobstore import (
    BlobNotFound,
    BlobStoreError,
    DigestMismatch,
    InvalidDigest,
    InvalidRange,
    SizeMismatch,
    UploadNotFound,
)
from registry.errcode import (
    BLOB_RANGE_INVALID,
    BLOB_UNKNOWN,
    BLOB_UPLOAD_INVALID,
    BLOB_UPLOAD_UNKNOWN,
    DIGEST_INVALID,
    INTERNAL,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    SIZE_INVALID,
    ErrorCode,
    RegistryError,
)
from registry.http.keys import RESPONSE_STARTED

log = logging.getLogger(__name__)

API_VERSION_HEADER: Final = "Docker-Distribution-API-Version"
API_VERSION: Final = "registry/2.0"
SERVER: Final = "Berth"

DOMAIN_ERRORS: Final[dict[type[Exception], ErrorCode]] = {
    BlobNotFound: BLOB_UNKNOWN,
    UploadNotFound: BLOB_UPLOAD_UNKNOWN,
    DigestMismatch: DIGEST_INVALID,
    InvalidDigest: DIGEST_INVALID,
    SizeMismatch: SIZE_INVALID,
    InvalidRange: BLOB_RANGE_INVALID,
    BlobStoreError: BLOB_UPLOAD_INVALID,
}
HTTP_ERRORS: Final[dict[int, ErrorCode]] = {404: NOT_FOUND, 405: METHOD_NOT_ALLOWED}
_ENTITY_HEADERS: Final = frozenset({"Content-Type", "Content-Length"})


def to_registry_error(exc: Exception) -> RegistryError | None:
    if isinstance(exc, RegistryError):
        return exc
    for cls in type(exc).__mro__:
        code = DOMAIN_ERRORS.get(cls)
        if code is not None:
            return RegistryError(code, detail=str(exc))
    return None


def render(error: RegistryError) -> web.Response:
    return web.Response(
        status=error.code.status,
        text=json.dumps(error.body()),
        content_type="application/json",
        headers=error.headers,
    )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        code = HTTP_ERRORS.get(exc.status)
        if code is None:
            raise
        return render(_from_http(request, exc, code))
    except Exception as exc:
        if request.get(RESPONSE_STARTED):
            raise  # the status line is gone; the connection will be cut instead
        error = to_registry_error(exc)
        if error is None:
            log.exception("unhandled error in %s %s", request.method, request.path)
            error = RegistryError(INTERNAL)
        if error.code.status == 401 and "WWW-Authenticate" not in error.headers:
            error.headers["WWW-Authenticate"] = f'Basic realm="{request.host}"'
        return render(error)


def _from_http(request: web.Request, exc: web.HTTPException, code: ErrorCode) -> RegistryError:
    headers = {k: v for k, v in exc.headers.items() if k not in _ENTITY_HEADERS}
    detail: dict[str, object] = {"method": request.method, "path": request.path}
    if isinstance(exc, web.HTTPMethodNotAllowed):
        detail["allowed"] = sorted(exc.allowed_methods)
    return RegistryError(code, detail=detail, headers=headers)


async def on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
    request[RESPONSE_STARTED] = True
    response.headers.setdefault(API_VERSION_HEADER, API_VERSION)
    response.headers["Server"] = SERVER


def hide_server_software() -> None:
    """aiohttp answers a request it cannot parse before any application code runs, with a
    `Server` header naming the Python and aiohttp versions and no setting to change it: the
    default it uses is replaced, for this process."""
    setattr(web_response, "SERVER_SOFTWARE", SERVER)  # noqa: B010  (not re-exported for mypy)
