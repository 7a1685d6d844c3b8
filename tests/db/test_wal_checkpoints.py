"""SQLite's write-ahead log is checkpointed by the checkpoint thread, not by the writer's
COMMIT: the database file takes the written pages and the log stops growing. A log copied
back and not written since is left alone, however large its file stays."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from pathlib import Path

from sqlalchemy import text

from registry.db import Database, WriteConnection, upgrade
from registry.db.wal_checkpoints import POLL_SECONDS, WAL_LIMIT, Checkpointer

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


async def test_a_log_copied_back_is_not_checkpointed_again_and_again(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("CREATE TABLE filler (x BLOB)")
    checkpointer = Checkpointer(str(path))
    try:
        rows = 2 * WAL_LIMIT // 8192
        writer.execute(
            f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) "
            "INSERT INTO filler SELECT randomblob(8192) FROM n"
        )
        await _wait_for(
            lambda: os.stat(path).st_size >= rows * 8192, "the log was copied into the database"
        )
        await asyncio.sleep(2 * POLL_SECONDS)  # a last checkpoint may have been under way
        done = checkpointer.checkpoints
        await asyncio.sleep(4 * POLL_SECONDS)
        # The file keeps its size until a write restarts the log from its beginning...
        assert os.stat(f"{path}-wal").st_size >= WAL_LIMIT
        assert checkpointer.checkpoints == done  # ...and is not checkpointed meanwhile
        writer.execute("INSERT INTO filler VALUES (randomblob(8192))")
        await _wait_for(lambda: checkpointer.checkpoints > done, "a written log is checkpointed")
    finally:
        checkpointer.close()
        writer.close()
