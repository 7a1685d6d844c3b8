"""SQLite's write-ahead log is checkpointed by the checkpoint thread, not by the writer's
COMMIT: the database file takes the written pages and the log stops growing."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from sqlalchemy import text

from registry.db import Database, WriteConnection, upgrade
from registry.db.wal_checkpoints import WAL_LIMIT

_CHUNK_ROWS = 64  # of 8 KiB: half a megabyte of log a transaction


async def _wait_for(predicate: object, what: str, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def test_the_log_is_checkpointed_off_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)
    db = Database(url)
    wal = f"{path}-wal"
    try:
        await db.transact(lambda conn: conn.execute(text("CREATE TABLE filler (x BLOB)")))
        insert = text("INSERT INTO filler (x) VALUES (randomblob(8192))")

        async def chunk(conn: WriteConnection) -> None:
            for _ in range(_CHUNK_ROWS):
                await conn.execute(insert)

        written = 0
        rounds = 2 * WAL_LIMIT // (_CHUNK_ROWS * 8192) + 1
        for _ in range(rounds):
            await db.transact(chunk)
            written += _CHUNK_ROWS * 8192
            # Off the writer: the COMMIT never copies pages back (autocheckpoint is off)...
            if os.stat(wal).st_size > WAL_LIMIT:
                await _wait_for(
                    lambda done=written: os.stat(path).st_size >= done,
                    "the checkpoint thread copied the log into the database",
                )
        # ...and the log is reused, not grown: a few chunks past the limit at most.
        assert os.stat(wal).st_size < WAL_LIMIT + 4 * _CHUNK_ROWS * 8192 * 2
        assert os.stat(path).st_size >= written
    finally:
        await db.dispose()
