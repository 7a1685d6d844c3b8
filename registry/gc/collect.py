"""One garbage collection pass over a registry's database and blobstore, while it serves.

    report = await collect_garbage(db, store, locks, GCOptions(grace=timedelta(hours=1)))

Phases, in order: finish blobs an interrupted pass had marked; (opt-in) delete untagged
manifests; remove repository links no manifest of the repository references; mark, delete
and forget unused blobs; delete stored files the database has no row for; purge expired
upload sessions and orphaned one-request ingests. Every phase streams in batches, so memory
does not grow with the store. How this stays correct while pushes run is in docs/gc.md.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from blobstore import BlobStore
from registry.db import Database
from registry.db.models import utcnow
from registry.gc.blobs import finish_marked, remove_orphan_files, remove_unused_blobs
from registry.gc.context import Pass
from registry.gc.history import Trigger, record_run
from registry.gc.references import remove_untagged_manifests, remove_unused_links
from registry.gc.report import GCReport, OnRemoval, Removal
from registry.leases import Leases
from registry.service.purge import purge_orphaned_ingests, purge_uploads
from registry.service.upload_locks import UploadLocks

DEFAULT_GRACE: Final = timedelta(hours=1)
GC_LEASE: Final = "gc"  # one pass at a time across processes and replicas


@dataclass(frozen=True, slots=True)
class GCOptions:
    grace: timedelta = DEFAULT_GRACE
    delete_untagged: bool = False
    dry_run: bool = False
    upload_age: timedelta | None = None  # purge upload sessions idle this long; None: skip
    batch: int = 500
    trigger: Trigger = "command"  # recorded in the pass's history row


async def collect_garbage(
    db: Database,
    store: BlobStore,
    locks: UploadLocks,
    options: GCOptions = GCOptions(),
    on_removal: OnRemoval | None = None,
) -> GCReport:
    """Run one pass. A real pass holds the `gc` lease (LeaseBusy if another pass runs);
    a dry run takes no lease and changes nothing."""
    report = GCReport(dry_run=options.dry_run)
    started = time.monotonic()
    now = utcnow()
    run = Pass(
        db=db,
        store=store,
        cutoff=now - options.grace,
        now=now,
        dry_run=options.dry_run,
        batch=options.batch,
        report=report,
        on_removal=on_removal,
    )
    if options.dry_run:
        await _phases(run, locks, options)
    else:
        async with Leases(db).hold(GC_LEASE):
            try:
                await _phases(run, locks, options)
            except Exception as exc:
                with contextlib.suppress(Exception):  # the pass's own error is the one to see
                    await record_run(db, options.trigger, now, utcnow(), report, _reason(exc))
                raise
            await record_run(db, options.trigger, now, utcnow(), report)
    report.seconds = time.monotonic() - started
    return report


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def _phases(run: Pass, locks: UploadLocks, options: GCOptions) -> None:
    await finish_marked(run)
    if options.delete_untagged:
        await remove_untagged_manifests(run)
    await remove_unused_links(run)
    await remove_unused_blobs(run)
    await remove_orphan_files(run)
    if options.upload_age is not None:
        purged = await purge_uploads(
            run.db, run.store, locks, older_than=options.upload_age, dry_run=run.dry_run
        )
        for upload_id in purged:
            run.emit(Removal("upload", upload_id))
        orphans = await purge_orphaned_ingests(
            run.db, run.store, older_than=options.upload_age, dry_run=run.dry_run
        )
        for ingest_id in orphans:
            run.emit(Removal("ingest", ingest_id))
