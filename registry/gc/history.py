"""A record of garbage collection passes: when each ran, what started it, what it removed, and
why it stopped if it failed. The UI's storage page and `berth gc --history` read it; only the
newest `KEPT` rows are kept, so the table stays small however often GC runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from sqlalchemy import delete, insert, select

from registry.db import Database, ReadConnection, WriteConnection
from registry.db.models import as_utc, gc_runs
from registry.gc.report import GCReport

Trigger = Literal["schedule", "command"]
KEPT: Final = 50
_ERROR_LENGTH: Final = 500


@dataclass(frozen=True, slots=True)
class GCRun:
    started_at: datetime
    finished_at: datetime
    trigger: str
    manifests: int
    links: int
    blobs: int
    uploads: int
    ingests: int
    bytes_freed: int
    error: str | None

    @property
    def seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


async def record_run(
    db: Database,
    trigger: Trigger,
    started_at: datetime,
    finished_at: datetime,
    report: GCReport,
    error: str | None = None,
) -> None:
    """Add a pass (what it removed until it stopped, when it failed) and drop the oldest."""
    row = {
        "started_at": started_at,
        "finished_at": finished_at,
        "trigger": trigger,
        "manifests": report.manifests,
        "links": report.links,
        "blobs": report.blobs,
        "uploads": report.uploads,
        "ingests": report.ingests,
        "bytes_freed": report.bytes_freed,
        "error": error[:_ERROR_LENGTH] if error else None,
    }

    async def work(conn: WriteConnection) -> None:
        await conn.execute(insert(gc_runs).values(row))
        newest = select(gc_runs.c.id).order_by(gc_runs.c.id.desc()).limit(KEPT)
        await conn.execute(delete(gc_runs).where(gc_runs.c.id.not_in(newest.scalar_subquery())))

    await db.transact(work)


async def recent_runs(conn: ReadConnection, limit: int = 10) -> list[GCRun]:
    """The newest passes first."""
    query = select(*_COLUMNS).order_by(gc_runs.c.id.desc()).limit(limit)
    runs = []
    for row in (await conn.execute(query)).all():
        fields = dict(row._mapping)
        fields["started_at"] = as_utc(fields["started_at"])
        fields["finished_at"] = as_utc(fields["finished_at"])
        runs.append(GCRun(**fields))
    return runs


_COLUMNS: Final = (
    gc_runs.c.started_at,
    gc_runs.c.finished_at,
    gc_runs.c.trigger,
    gc_runs.c.manifests,
    gc_runs.c.links,
    gc_runs.c.blobs,
    gc_runs.c.uploads,
    gc_runs.c.ingests,
    gc_runs.c.bytes_freed,
    gc_runs.c.error,
)
