"""The request being handled, for code below the handlers that must describe it (webhook
events carry its id, address and user). Set by the observing middleware for each request."""

from __future__ import annotations

from contextvars import ContextVar

from aiohttp import web

CURRENT_REQUEST: ContextVar[web.Request | None] = ContextVar("berth_request", default=None)
REQUEST_ID = web.RequestKey("berth.request_id", str)
