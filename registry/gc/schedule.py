"""`gc.interval`: a pass every interval, on the one replica elected through the database."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import timedelta
from typing import Final

from blobstore import BlobStore
from registry.config import Config
from registry.db import Database
from registry.gc.collect import GCOptions, collect_garbage
from registry.leases import LeaseBusy, Leases, run_as_leader
from registry.metrics import GC_FREED_BYTES, GC_RUNS
from registry.retention import retain_on_schedule
from registry.service.upload_locks import UploadLocks

log = logging.getLogger(__name__)

SCHEDULE_LEASE: Final = "gc-schedule"


def options_from(config: Config) -> GCOptions:
    """The pass `config` asks for (the CLI starts from this and applies its flags)."""
    purging = config.storage.maintenance.uploadpurging
    return GCOptions(
        grace=timedelta(seconds=config.gc.grace),
        delete_untagged=config.gc.deleteuntagged,
        upload_age=timedelta(seconds=purging.age) if purging.enabled else None,
    )


def scheduled_options(config: Config) -> GCOptions:
    return dataclasses.replace(options_from(config), trigger="schedule")


async def collect_forever(
    db: Database, store: BlobStore, locks: UploadLocks, config: Config
) -> None:
    """Run as a task in every worker; only the elected one collects. Cancel to stop."""

    async def job() -> None:
        while True:
            await asyncio.sleep(config.gc.interval)
            await retain_on_schedule(db, config)
            try:
                report = await collect_garbage(db, store, locks, scheduled_options(config))
            except LeaseBusy as exc:
                log.info("garbage collection skipped: %s", exc)
                continue
            except Exception:
                log.exception("garbage collection failed")
                continue
            GC_RUNS.inc()
            GC_FREED_BYTES.inc(report.bytes_freed)
            log.info("garbage collection: %s", report.as_dict())

    await run_as_leader(Leases(db), SCHEDULE_LEASE, job)
