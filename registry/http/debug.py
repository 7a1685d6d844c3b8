"""Distribution's debug server (`http.debug.addr`): Prometheus metrics at
`http.debug.prometheus.path` and `/debug/health`. A separate listener, meant to stay
internal; every worker serves it from one shared socket, and any of them answers for all."""

from __future__ import annotations

import logging
import socket

from aiohttp import web
from sqlalchemy import func, select

from registry import metrics
from registry.db import Database
from registry.db.models import blobs, upload_sessions
from registry.health import run_checks
from registry.http.keys import BLOBSTORE, CONFIG, DATABASE
from registry.webhooks import queue_depth

log = logging.getLogger(__name__)


def create_debug_app(main: web.Application) -> web.Application:
    """The debug application, reading the resources of the running `main` application."""
    config = main[CONFIG].http.debug

    async def health(_request: web.Request) -> web.Response:
        failures = await run_checks(main[DATABASE], main[CONFIG].database_url, main[BLOBSTORE])
        return web.json_response(failures, status=503 if failures else 200)

    async def scrape(_request: web.Request) -> web.Response:
        endpoints = [e.name for e in main[CONFIG].notifications.endpoints if not e.disabled]
        body = metrics.render(await _database_gauges(main[DATABASE], endpoints))
        return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE})

    app = web.Application()
    app.router.add_get("/debug/health", health)
    if config.prometheus.enabled:
        app.router.add_get(config.prometheus.path, scrape)
    return app


async def start_debug_server(main: web.Application, sock: socket.socket) -> web.AppRunner:
    runner = web.AppRunner(create_debug_app(main), handle_signals=False, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return runner


async def _database_gauges(db: Database, endpoints: list[str]) -> dict[str, tuple[str, float]]:
    """What only the database knows, read for each scrape; nothing when it does not answer."""
    try:
        async with db.read() as conn:
            count = (await conn.execute(select(func.count()).select_from(blobs))).scalar_one()
            size = (
                await conn.execute(select(func.coalesce(func.sum(blobs.c.size), 0)))
            ).scalar_one()
            uploads = (
                await conn.execute(
                    select(func.count())
                    .select_from(upload_sessions)
                    .where(upload_sessions.c.ended_at.is_(None))
                )
            ).scalar_one()
            depth = await queue_depth(conn, endpoints)
    except Exception:  # the scrape still shows the process metrics
        log.warning("metrics: the database did not answer", exc_info=True)
        return {}
    return {
        "berth_storage_blobs": ("Blobs the registry knows", float(count)),
        "berth_storage_bytes": ("Bytes of the blobs the registry knows", float(size)),
        "berth_uploads_in_progress": ("Upload sessions a PATCH or PUT has started", float(uploads)),
        "berth_webhook_queue_depth": ("Webhook deliveries not yet made", float(depth)),
    }
