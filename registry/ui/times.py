"""Times read back from SQL: SQLite returns them naive (they were written in UTC)."""

from __future__ import annotations

from datetime import datetime

from registry.db.models import as_utc as db_as_utc


def as_utc(value: datetime | str | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):  # an aggregate over a SQLite column comes back as text
        value = datetime.fromisoformat(value)
    return db_as_utc(value)


def latest(*values: datetime | None) -> datetime | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None
