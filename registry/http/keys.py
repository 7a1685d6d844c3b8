"""Typed keys for what create_app stores on the application and the request."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from registry.config import Config
from registry.db import Database
from registry.http.inflight import InFlight
from registry.service import (
    BlobService,
    CatalogService,
    ManifestService,
    PullRecorder,
    ReferrerService,
    TagService,
    UploadService,
)

CONFIG = web.AppKey("berth.config", Config)
BLOBS = web.AppKey("berth.blobs", BlobService)
UPLOADS = web.AppKey("berth.uploads", UploadService)
MANIFESTS = web.AppKey("berth.manifests", ManifestService)
TAGS = web.AppKey("berth.tags", TagService)
CATALOG = web.AppKey("berth.catalog", CatalogService)
REFERRERS = web.AppKey("berth.referrers", ReferrerService)
SENDFILE_POOL = web.AppKey("berth.sendfile_pool", ThreadPoolExecutor)
INFLIGHT = web.AppKey("berth.inflight", InFlight)
DATABASE = web.AppKey("berth.database", Database)
PULLS = web.AppKey("berth.pulls", PullRecorder)
RESPONSE_STARTED = web.RequestKey("berth.response_started", bool)
