"""The state one garbage collection pass shares between its phases."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from blobstore import BlobStore
from registry.db import Database, ReadConnection
from registry.db.models import repositories
from registry.gc.report import GCReport, OnRemoval, Removal


@dataclass(slots=True)
class Pass:
    db: Database
    store: BlobStore
    cutoff: datetime  # kept: anything created or touched at or after this
    now: datetime
    dry_run: bool
    batch: int
    report: GCReport
    on_removal: OnRemoval | None

    def emit(self, removal: Removal) -> None:
        self.report.add(removal)
        if self.on_removal is not None:
            self.on_removal(removal)


async def repository_names(conn: ReadConnection, ids: Iterable[int]) -> dict[int, str]:
    wanted = set(ids)
    if not wanted:
        return {}
    rows = await conn.execute(
        select(repositories.c.id, repositories.c.name).where(repositories.c.id.in_(wanted))
    )
    return {int(row.id): str(row.name) for row in rows}
