"""Typed keys for what create_app stores on the application and the request."""

from __future__ import annotations

from aiohttp import web

from blobstore import BlobStore
from registry.config import Config
from registry.db import Database
from registry.http.inflight import InFlight
from registry.http.sendfile import SendfilePool
from registry.proxy import PullThroughCache
from registry.service import (
    BlobService,
    CatalogService,
    ManifestService,
    PullRecorder,
    ReferrerService,
    TagService,
    UploadService,
)
from registry.service.touches import TouchRecorder
from registry.webhooks import Outbox

CONFIG = web.AppKey("berth.config", Config)
BLOBS = web.AppKey("berth.blobs", BlobService)
UPLOADS = web.AppKey("berth.uploads", UploadService)
MANIFESTS = web.AppKey("berth.manifests", ManifestService)
TAGS = web.AppKey("berth.tags", TagService)
CATALOG = web.AppKey("berth.catalog", CatalogService)
REFERRERS = web.AppKey("berth.referrers", ReferrerService)
SENDFILE_POOL = web.AppKey("berth.sendfile_pool", SendfilePool)
INFLIGHT = web.AppKey("berth.inflight", InFlight)
TOUCHES = web.AppKey("berth.touches", TouchRecorder)
PULLS = web.AppKey("berth.pulls", PullRecorder)
RESPONSE_STARTED = web.RequestKey("berth.response_started", bool)
DATABASE = web.AppKey("berth.database", Database)
HTTP_SECRET = web.AppKey("berth.http_secret", bytes)  # derive keys with shared_secret.derive
BLOBSTORE = web.AppKey("berth.blobstore", BlobStore)
EVENTS = web.AppKey("berth.events", Outbox)
PROXY = web.AppKey("berth.proxy", PullThroughCache)  # set only when proxy is configured
