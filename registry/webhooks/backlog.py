"""What the outbox still holds: undelivered events per endpoint, and the failing ones."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from registry.db import Database, ReadConnection
from registry.db.models import webhook_outbox


@dataclass(frozen=True, slots=True)
class Undelivered:
    endpoint: str
    event_id: str
    action: str
    repository: str
    target: str  # tag or digest
    created_at: datetime
    attempts: int
    last_error: str | None

    @property
    def failed(self) -> bool:
        return self.last_error is not None


async def queue_depth(conn: ReadConnection, endpoints: Sequence[str]) -> int:
    """Events waiting for `endpoints` (rows left for an endpoint since removed from the
    configuration are not waiting for anything)."""
    if not endpoints:
        return 0
    query = select(func.count()).where(
        webhook_outbox.c.delivered_at.is_(None), webhook_outbox.c.endpoint.in_(endpoints)
    )
    return int((await conn.execute(query)).scalar_one())


async def undelivered(
    db: Database, *, failed_only: bool = False, limit: int = 100
) -> list[Undelivered]:
    """The oldest undelivered events, per endpoint in delivery order."""
    query = select(webhook_outbox).where(webhook_outbox.c.delivered_at.is_(None))
    if failed_only:
        query = query.where(webhook_outbox.c.last_error.is_not(None))
    query = query.order_by(webhook_outbox.c.endpoint, webhook_outbox.c.id).limit(limit)
    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
    found = []
    for row in rows:
        target = json.loads(row.payload).get("target", {})
        found.append(
            Undelivered(
                row.endpoint,
                row.event_id,
                row.action,
                row.repository,
                target.get("tag") or target.get("digest", ""),
                row.created_at,
                int(row.attempts),
                row.last_error,
            )
        )
    return found
