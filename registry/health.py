"""Readiness checks: does the database answer, and does the blob storage take writes.

`/readyz` on the main port and `/debug/health` on the debug server both run `run_checks`;
a failing check is reported by name with its error, as Distribution's health package does.
"""

from __future__ import annotations

import asyncio
import sqlite3
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Final

from sqlalchemy import text
from sqlalchemy.engine import make_url

from blobstore import BlobStore
from registry.db import Database

CHECK_TIMEOUT: Final = 5.0


async def run_checks(db: Database, database_url: str, store: BlobStore) -> dict[str, str]:
    """Name -> error of each failing check; empty when all pass."""
    checks: dict[str, Callable[[], Awaitable[None]]] = {
        "database": lambda: _check_database(db, database_url),
        "storage": lambda: _check_storage(store),
    }
    failures: dict[str, str] = {}
    for name, check in checks.items():
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                await check()
        except TimeoutError:
            failures[name] = f"no answer within {CHECK_TIMEOUT:g}s"
        except Exception as exc:  # noqa: BLE001  (any failure is the answer)
            failures[name] = f"{type(exc).__name__}: {exc}"
    return failures


async def _check_database(db: Database, url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        # The server's open connections keep working on a file that was moved or deleted
        # under them; a fresh connection, which must not create the file, tells the truth.
        await asyncio.to_thread(_probe_sqlite_file, str(parsed.database))
        return
    async with db.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


def _probe_sqlite_file(path: str) -> None:
    uri = f"file:{urllib.parse.quote(path)}?mode=rw"
    conn = sqlite3.connect(uri, uri=True, timeout=CHECK_TIMEOUT)
    try:
        conn.execute("SELECT version_num FROM alembic_version").fetchall()
    finally:
        conn.close()


async def _check_storage(store: BlobStore) -> None:
    upload = await store.begin()
    await upload.abort()
