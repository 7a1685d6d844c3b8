"""Watching every request: a request id, Prometheus metrics and one access log line.

The request id is taken from `X-Request-Id` when the client sent a sane one, else made, and
returned on the response; webhook events carry it too. The access log line holds the route
template and the repository, never the query string (signed URLs, tokens) or any header.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import re
import time
import uuid
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import Counter, Histogram

from registry import metrics
from registry.auth.state import IDENTITY
from registry.log_redaction import redact
from registry.logs import RedactedFields, deliver, quick_record
from registry.request_context import CURRENT_REQUEST, REQUEST_ID

REQUEST_ID_HEADER: Final = "X-Request-Id"

_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_SANE_ID: Final = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
access_log = logging.getLogger("berth.access")
_ACCESS_LINE: Final = "%s %s %d %.3fs"


def install(app: web.Application, *, access_log_enabled: bool) -> None:
    """Observe every request of `app`, outermost (sees the final status of errors too)."""
    app.middlewares.insert(0, observe_middleware(access_log_enabled))
    app.on_response_prepare.append(_add_request_id)


def route_of(request: web.Request) -> str:
    """The matched route's template, or `other` (unknown path, wrong method)."""
    resource = request.match_info.route.resource  # None for the 404/405 system routes
    return "other" if resource is None else resource.canonical


def observe_middleware(access_log_enabled: bool) -> Middleware:
    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.perf_counter()
        sent = request.headers.get(REQUEST_ID_HEADER, "")
        request[REQUEST_ID] = sent if _SANE_ID.fullmatch(sent) else _request_ids.next()
        token = CURRENT_REQUEST.set(request)
        status = 500
        response: web.StreamResponse | None = None
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            CURRENT_REQUEST.reset(token)
            _record(request, response, status, time.perf_counter() - start, access_log_enabled)

    return observe


class _RequestIds:
    """UUID-shaped request ids: a random prefix per process and a counter. Unique across
    workers and replicas like uuid4's, without a getrandom call and a UUID object a request."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # workers must not share a prefix

    def _reset(self) -> None:
        self._prefix = str(uuid.uuid4())[:24]
        self._counter = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter) % _COUNTER_SPAN:012x}"


_COUNTER_SPAN: Final = 1 << 48
_request_ids = _RequestIds()


def _record(
    request: web.Request,
    response: web.StreamResponse | None,
    status: int,
    duration: float,
    log_it: bool,
) -> None:
    method, route = request.method, route_of(request)
    received = request.content.total_bytes
    sent = _body_bytes(request, response)
    count, timing, bytes_in, bytes_out = _series(method, route, status)
    count.inc()
    timing.observe(duration)
    if received:
        bytes_in.inc(received)
    if sent:
        bytes_out.inc(sent)
    if not log_it or not access_log.isEnabledFor(logging.INFO):
        return
    identity = request.get(IDENTITY)
    # Not Logger.info, which would look up the caller's frame and run the redacting record
    # factory for a message made of the method, the route template and numbers: the record is
    # made and delivered directly. What the client sent is redacted here, once.
    shown = redact(method)  # any token is a method
    fields = RedactedFields(
        request_id=redact(request[REQUEST_ID]),
        method=shown,
        route=route,
        path=redact(request.path),  # never the query string: signed URLs and tokens live there
        repository=redact(request.match_info.get("name", "")),
        status=status,
        bytes_in=received,
        bytes_out=sent,
        duration=round(duration, 6),
        user=redact(identity.user) if identity is not None and identity.user else "",
        remote=redact(request.remote or ""),
    )
    args = (shown, route, status, duration)
    deliver(access_log, quick_record(access_log, logging.INFO, _ACCESS_LINE, args, fields))


@functools.lru_cache(maxsize=4096)
def _series(method: str, route: str, status: int) -> tuple[Counter, Histogram, Counter, Counter]:
    """The labelled metrics of one kind of request (`labels()` costs more than the update)."""
    if method not in _METHODS:  # any token is a method: keep the label bounded
        method = "other"
    return (
        metrics.HTTP_REQUESTS.labels(method, route, str(status)),
        metrics.HTTP_DURATION.labels(method, route),
        metrics.HTTP_RECEIVED.labels(method, route),
        metrics.HTTP_SENT.labels(method, route),
    )


def _body_bytes(request: web.Request, response: web.StreamResponse | None) -> int:
    if response is None or request.method == "HEAD":
        return 0
    if response.prepared and response.body_length:
        return response.body_length
    return response.content_length or 0  # not sent yet, or sent by sendfile outside aiohttp


async def _add_request_id(request: web.Request, response: web.StreamResponse) -> None:
    request_id = request.get(REQUEST_ID)
    if request_id is not None:
        response.headers[REQUEST_ID_HEADER] = request_id
