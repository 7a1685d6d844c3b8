"""The only wiring: `create_app(config)` builds the aiohttp application and its resources."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Final

from aiohttp import web

import registry.auth
import registry.ui
from registry.blobstores import open_blobstore
from registry.config import Config
from registry.db import Database
from registry.gc.schedule import collect_forever
from registry.holders import holder_name
from registry.http import ROUTES, error_middleware, observe
from registry.http.errors import on_response_prepare
from registry.http.inflight import InFlight
from registry.http.keys import (
    BLOBS,
    BLOBSTORE,
    CATALOG,
    CONFIG,
    DATABASE,
    EVENTS,
    HTTP_SECRET,
    INFLIGHT,
    MANIFESTS,
    PROXY,
    PULLS,
    REFERRERS,
    SENDFILE_POOL,
    TAGS,
    TOUCHES,
    UPLOADS,
)
from registry.http.sendfile import SendfilePool
from registry.immutable_tags import ImmutableTags
from registry.leases import Leases
from registry.metrics import instrument_pool
from registry.proxy import PullThroughCache
from registry.quota import Quotas
from registry.service import (
    BlobService,
    CatalogService,
    ManifestService,
    PullRecorder,
    ReferrerService,
    TagService,
    UploadService,
)
from registry.service.purge import purge_on_leader, release_dead_leader
from registry.service.signed_upload_ids import PURPOSE as UPLOAD_ID_PURPOSE
from registry.service.signed_upload_ids import SignedUploadIds
from registry.service.touches import TouchRecorder
from registry.service.upload_locks import UploadLocks
from registry.shared_secret import derive, http_secret
from registry.webhooks import Outbox, start_dispatcher

log = logging.getLogger(__name__)

MAX_PAGE: Final = 1000
STOP_TIMEOUT: Final = 10.0  # seconds background tasks get to finish when the app stops
SENDFILE_THREADS: Final = 64  # blob downloads in flight per worker, each parked in os.sendfile
# Chunks and monolithic uploads stream; only manifests are read whole, and they stop at 4 MiB.
CLIENT_MAX_SIZE: Final = 4 * 1024 * 1024 + 1


def create_app(config: Config) -> web.Application:
    """The registry application for `config`. The database must already be migrated
    (`registry.db.upgrade(config.database_url)`; `berth serve` does it before starting)."""
    inflight = InFlight()
    app = web.Application(
        middlewares=[inflight.middleware(), error_middleware], client_max_size=CLIENT_MAX_SIZE
    )
    app[CONFIG] = config
    app[INFLIGHT] = inflight
    db = Database(config.database_url, config.database.pool)  # connects on first use
    instrument_pool(db.engine)  # before anything checks a connection out
    app[DATABASE] = db
    app.on_response_prepare.append(on_response_prepare)
    app.cleanup_ctx.append(_resources)
    registry.auth.install(
        app, config.auth, config.data_dir, db, trusted_proxies=config.http.trustedproxies
    )
    app.add_routes(ROUTES)
    observe.install(app, access_log_enabled=config.log.accesslog)
    app[EVENTS] = Outbox(config.notifications.endpoints, source=_source(config))
    if config.ui.enabled:
        registry.ui.install(app, config)
    return app


async def _stop(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel background tasks and wait for them, for a bounded time: shutdown never hangs."""
    for task in tasks:
        task.cancel()
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
    for task in pending:
        log.error("background task %s did not stop within %ss", task.get_name(), STOP_TIMEOUT)


def _source(config: Config) -> dict[str, str]:
    """Where events come from, as Distribution's `source` record: host:port and this process."""
    port = config.http.addr.rpartition(":")[2]
    return {"addr": f"{socket.gethostname()}:{port}", "instanceID": str(uuid.uuid4())}


async def _resources(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    db = app[DATABASE]
    app[HTTP_SECRET] = await http_secret(db, config.http.secret)
    stores = contextlib.AsyncExitStack()
    store = app[BLOBSTORE] = await stores.enter_async_context(open_blobstore(config))
    delete_enabled = config.storage.delete.enabled
    quotas = Quotas(config.quotas)
    events = app[EVENTS]
    app[BLOBS] = BlobService(
        db,
        store,
        delete_enabled=delete_enabled,
        redirect=not config.storage.redirect.disable,
        quotas=quotas,
        events=events,
    )
    leases = Leases(db, holder_name("process"))
    locks = UploadLocks(db)
    upload_ids = SignedUploadIds(
        derive(app[HTTP_SECRET], UPLOAD_ID_PURPOSE), config.storage.maintenance.uploadpurging.age
    )
    app[UPLOADS] = UploadService(db, store, locks, upload_ids, quotas=quotas, events=events)
    app[MANIFESTS] = ManifestService(
        db,
        delete_enabled=delete_enabled,
        immutable=ImmutableTags(config.immutabletags),
        quotas=quotas,
        events=events,
    )
    app[TAGS] = TagService(db, max_page=MAX_PAGE)
    app[CATALOG] = CatalogService(db, max_page=MAX_PAGE)
    app[REFERRERS] = ReferrerService(db)
    cache = None
    if config.proxy.enabled:
        cache = app[PROXY] = PullThroughCache(config.proxy, db, store, app[MANIFESTS], app[BLOBS])
    sendfile_pool = SendfilePool(SENDFILE_THREADS)
    app[SENDFILE_POOL] = sendfile_pool
    purging = config.storage.maintenance.uploadpurging
    if purging.enabled:
        await release_dead_leader(db)
    purger = (
        asyncio.create_task(purge_on_leader(leases, db, store, locks, purging))
        if purging.enabled
        else None
    )
    touches = app[TOUCHES] = TouchRecorder(db)
    background = [asyncio.create_task(touches.run())]
    if config.gc.interval > 0:
        background.append(asyncio.create_task(collect_forever(db, store, locks, config)))
    dispatcher = start_dispatcher(db, config.notifications.endpoints)
    pulls = app[PULLS] = PullRecorder(db)
    background.append(asyncio.create_task(pulls.run()))
    background.append(asyncio.create_task(events.pulls.run(db)))
    yield
    if cache is not None:
        await cache.close()
    await _stop([task for task in (dispatcher, purger, *background) if task is not None])
    with contextlib.suppress(Exception):
        await touches.flush()
    await pulls.flush()
    await events.pulls.flush(db)
    sendfile_pool.shutdown()
    await db.dispose()
    await stores.aclose()
