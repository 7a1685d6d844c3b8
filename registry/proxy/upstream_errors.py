"""What a failed upstream request means to the client of the cache: the one mapping from the
registry client's errors to OCI errors, and the test for "serve it stale"."""

from __future__ import annotations

import aiohttp

from registry.errcode import BLOB_UNKNOWN, MANIFEST_UNKNOWN, ErrorCode, RegistryError
from registry.proxy.upstreams import Route
from registry_client.errors import AuthenticationFailed, ClientError, NotFound

UPSTREAM_FAILURES = (ClientError, aiohttp.ClientError, TimeoutError)


def is_unavailable(exc: BaseException) -> bool:
    """Unreachable, 5xx, refused credentials, nonsense: anything but "it does not exist"."""
    return isinstance(exc, UPSTREAM_FAILURES) and not isinstance(exc, NotFound)


def upstream_error(
    exc: BaseException, route: Route, reference: str, unknown: ErrorCode
) -> RegistryError:
    """The OCI error for `exc`, raised by a request for `reference` in `route`'s upstream.

    Unknown here either way (MANIFEST_UNKNOWN, BLOB_UNKNOWN: 404), with a message saying why:
    docker, containerd, skopeo and podman show an error's message for a 4xx only, and "the
    upstream is down" is what the user needs to read."""
    detail = {
        "upstream": route.upstream.url,
        "repository": route.remote,
        "reference": reference,
        "reason": str(exc) or type(exc).__name__,
    }
    if isinstance(exc, NotFound):
        message = f"{unknown.message} (nor to upstream registry {route.upstream.url})"
    elif isinstance(exc, AuthenticationFailed):
        message = (
            f"upstream registry {route.upstream.url} refused the cache's credentials "
            "and nothing is cached"
        )
    else:
        message = f"upstream registry {route.upstream.url} is unavailable and nothing is cached"
    return RegistryError(unknown, message=message, detail=detail)


def manifest_error(exc: BaseException, route: Route, reference: str) -> RegistryError:
    return upstream_error(exc, route, reference, MANIFEST_UNKNOWN)


def blob_error(exc: BaseException, route: Route, reference: str) -> RegistryError:
    return upstream_error(exc, route, reference, BLOB_UNKNOWN)
