"""`/healthz` (the process answers) and `/readyz` (its database and storage answer), on the
main port for load balancers and Kubernetes probes. Outside /v2, so never behind auth."""

from __future__ import annotations

from aiohttp import web

from registry.health import run_checks
from registry.http.keys import BLOBSTORE, CONFIG, DATABASE


async def healthz(_request: web.Request) -> web.Response:
    """GET /healthz"""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """GET /readyz: 200 `{}`, or 503 with each failing check's name and error."""
    app = request.app
    failures = await run_checks(app[DATABASE], app[CONFIG].database_url, app[BLOBSTORE])
    return web.json_response(failures, status=503 if failures else 200)
