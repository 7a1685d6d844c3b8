"""The registry's Prometheus metrics, counted across every worker process.

`berth serve` sets PROMETHEUS_MULTIPROC_DIR before the first import of prometheus-client, so
each process writes its values to mmap files there and a scrape (`render`) sums them. In a
single process (the API tests) the default registry is used. Labels are bounded: `route` is
the route template (`/v2/{name}/blobs/{digest}`), never a repository name.

Other modules increment the objects below (`GC_RUNS.inc()`); values that only the database
knows (blob count and bytes, open uploads, webhook queue) are read at scrape time.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from registry import process_id

MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
if os.environ.get(MULTIPROC_ENV):
    # Each update checks the process id against the one its file was opened for (after a
    # fork, a worker writes a file of its own): from a cache refreshed at fork, not with a
    # getpid system call three times a request.
    values.ValueClass = values.MultiProcessValue(process_id.current)  # type: ignore[no-untyped-call]  # untyped upstream
_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

HTTP_REQUESTS = Counter(
    "berth_http_requests", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "berth_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=_BUCKETS,
)
HTTP_RECEIVED = Counter(
    "berth_http_received_bytes", "Request body bytes received", ["method", "route"]
)
HTTP_SENT = Counter("berth_http_sent_bytes", "Response body bytes sent", ["method", "route"])

GC_RUNS = Counter("berth_gc_runs", "Garbage collection runs completed")
GC_FREED_BYTES = Counter("berth_gc_freed_bytes", "Bytes of blobs garbage collection deleted")

WEBHOOK_DELIVERIES = Counter("berth_webhook_deliveries", "Webhook events delivered", ["endpoint"])
WEBHOOK_FAILURES = Counter(
    "berth_webhook_failures", "Webhook delivery attempts that failed", ["endpoint"]
)

DB_POOL_IN_USE = Gauge(
    "berth_db_pool_connections_in_use",
    "Database connections checked out of the pools of live processes",
    multiprocess_mode="livesum",
)
DB_POOL_SIZE = Gauge(
    "berth_db_pool_connections",
    "Database connections open in the pools of live processes",
    multiprocess_mode="livesum",
)


def instrument_pool(engine: AsyncEngine) -> None:
    """Follow `engine`'s pool in DB_POOL_IN_USE and DB_POOL_SIZE: after every pool event the
    gauges are set from the pool's own counts, so they can never drift."""
    pool = engine.sync_engine.pool
    checked_out = getattr(pool, "checkedout", None)
    checked_in = getattr(pool, "checkedin", None)
    if checked_out is None or checked_in is None:  # a pool without counts (NullPool)
        return

    def update(*_: Any) -> None:
        in_use = checked_out()
        DB_POOL_IN_USE.set(in_use)
        DB_POOL_SIZE.set(in_use + checked_in())

    for name in ("connect", "close", "checkout", "checkin"):
        event.listen(pool, name, update)


def render(gauges: Mapping[str, tuple[str, float]]) -> bytes:
    """The text exposition: every process's metrics plus `gauges` (name -> (help, value)),
    the values read from the database for this scrape."""
    registry = CollectorRegistry(auto_describe=False)
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        MultiProcessCollector(registry, path)  # type: ignore[no-untyped-call]  # untyped upstream
    else:
        registry.register(_Forward(REGISTRY))
    registry.register(_Gauges(gauges))
    return generate_latest(registry)


def process_dead(pid: int) -> None:
    """Drop a dead worker's live gauges (its counters still count)."""
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]  # untyped upstream


class _Forward(Collector):
    def __init__(self, source: CollectorRegistry) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        return self._source.collect()


class _Gauges(Collector):
    def __init__(self, gauges: Mapping[str, tuple[str, float]]) -> None:
        self._gauges = gauges

    def collect(self) -> Iterator[Metric]:
        for name, (documentation, value) in self._gauges.items():
            yield GaugeMetricFamily(name, documentation, value=value)
