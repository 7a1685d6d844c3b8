"""The database as services see it: an async engine for writes and a fast path for reads.

On SQLite every aiosqlite statement is a round trip to a helper thread (and back for the GIL),
which dominates a manifest GET. WAL readers never wait for writers, so read-only queries run
instead on a plain synchronous sqlite3 connection in the calling thread: each statement is its
own snapshot, and takes microseconds. Other databases read through the async engine.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, Protocol

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, Result
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.base import Executable

from registry.db.engine import make_engine


class ReadConnection(Protocol):
    async def execute(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None
    ) -> Result[Any]: ...


class _SyncReader:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def execute(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None
    ) -> Result[Any]:
        return self._conn.execute(statement, parameters)


class Database:
    def __init__(self, url: str) -> None:
        self.engine: AsyncEngine = make_engine(url)
        self._sync: Engine | None = None
        if url.startswith("sqlite+aiosqlite:///") and ":memory:" not in url:
            self._sync = _sync_reader_engine(
                url.replace("sqlite+aiosqlite:", "sqlite+pysqlite:", 1)
            )

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[ReadConnection]:
        """A connection for read-only queries (never write through it)."""
        if self._sync is None:
            async with self.engine.connect() as conn:
                yield conn
            return
        with self._sync_connection() as conn:
            yield _SyncReader(conn)

    @contextlib.contextmanager
    def _sync_connection(self) -> Iterator[Connection]:
        assert self._sync is not None
        with self._sync.connect() as conn:
            yield conn

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._sync is not None:
            self._sync.dispose()


def _sync_reader_engine(url: str) -> Engine:
    # One connection for the event loop thread: reads never await, so they never interleave.
    engine = create_engine(
        url,
        poolclass=StaticPool,
        connect_args={"check_same_thread": False},
        pool_reset_on_return=None,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # autocommit: each SELECT is its own snapshot
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    return engine
