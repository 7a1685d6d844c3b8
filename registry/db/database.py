"""The database as services see it: an async engine for writes and a fast path for reads.

On SQLite every aiosqlite statement is a round trip to a helper thread (and back for the GIL),
which dominates a manifest GET. WAL readers never wait for writers, so read-only queries run
instead on a plain synchronous sqlite3 connection in the calling thread: each statement is its
own snapshot, and takes microseconds. Other databases read through the async engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, Final, Protocol, TypeVar

from sqlalchemy import create_engine, event, make_url
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.base import Executable

from registry.config import DatabasePoolConfig
from registry.db import sqlite_direct
from registry.db.engine import make_engine, transact
from registry.db.sqlite_direct import Statements
from registry.db.wal_checkpoints import Checkpointer

T = TypeVar("T")
_LOCK_WAIT: Final = 30.0  # seconds a writer waits for another process's write lock


Parameters = Mapping[str, Any] | Sequence[Mapping[str, Any]]  # one row's, or executemany's


class ScalarResult(Protocol):
    def __iter__(self) -> Iterator[Any]: ...
    def all(self) -> Sequence[Any]: ...
    def first(self) -> Any: ...
    def one(self) -> Any: ...
    def one_or_none(self) -> Any: ...


class Result(Protocol):
    """What services use of a statement's result: SQLAlchemy's CursorResult, or on SQLite's
    hot paths registry.db.sqlite_direct's."""

    @property
    def rowcount(self) -> int: ...
    def __iter__(self) -> Iterator[Any]: ...
    def first(self) -> Any: ...
    def one(self) -> Any: ...
    def one_or_none(self) -> Any: ...
    def all(self) -> Sequence[Any]: ...
    def fetchall(self) -> Sequence[Any]: ...
    def scalar(self) -> Any: ...
    def scalar_one(self) -> Any: ...
    def scalar_one_or_none(self) -> Any: ...
    def scalars(self) -> ScalarResult: ...


class ReadConnection(Protocol):
    async def execute(
        self, statement: Executable, parameters: Parameters | None = None
    ) -> Result: ...


class WriteConnection(ReadConnection, Protocol):
    @property
    def dialect(self) -> Dialect: ...


class _SyncReader:
    def __init__(self, conn: Connection, statements: Statements) -> None:
        self._conn = conn
        self._statements = statements

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()

    @property
    def dialect(self) -> Dialect:
        return self._conn.dialect

    def reset(self) -> None:
        """Forget SQLAlchemy's idea of a transaction (after a failed statement through it)."""
        self._conn.rollback()

    @property
    def raw(self) -> sqlite3.Connection:
        raw = self._conn.connection.driver_connection
        assert isinstance(raw, sqlite3.Connection)
        return raw

    async def execute(self, statement: Executable, parameters: Parameters | None = None) -> Result:
        if parameters is None or isinstance(parameters, Mapping):  # not executemany
            direct = sqlite_direct.execute(
                self._conn, self._statements, statement, parameters or {}
            )
            if direct is not None:
                return direct
        return self._conn.execute(statement, parameters)


_SyncWriter = _SyncReader  # the same wrapper, on the writer connection


class Database:
    def __init__(self, url: str, pool: DatabasePoolConfig | None = None) -> None:
        self.url = url
        self.engine: AsyncEngine = make_engine(url, pool)
        self._sync: Engine | None = None
        # Kept open: checking a Connection out of the pool for every read costs more than the
        # SELECT. Autocommit, so it holds no snapshot between statements.
        self._reader: _SyncReader | None = None
        self._writer: Engine | None = None
        self._checkpoints: Checkpointer | None = None
        self._writer_conn: _SyncWriter | None = None
        self._reading = _Reading(self)
        if url.startswith("sqlite+aiosqlite:///") and ":memory:" not in url:
            sync_url = url.replace("sqlite+aiosqlite:", "sqlite+pysqlite:", 1)
            self._sync = _sync_engine(sync_url, query_only=True)
            self._writer = _sync_engine(sync_url, query_only=False)
            self._read_statements = Statements(self._sync.dialect)
            self._write_statements = Statements(self._writer.dialect)
            self._checkpoints = Checkpointer(str(make_url(url).database))

    def read(self) -> contextlib.AbstractAsyncContextManager[ReadConnection]:
        """A connection for read-only queries (never write through it)."""
        if self._sync is None:
            return self.engine.connect()
        return self._reading

    async def _reader_connection(self) -> ReadConnection:
        reader = self._reader
        if reader is None:
            assert self._sync is not None
            reader = self._reader = _SyncReader(self._sync.connect(), self._read_statements)
        return reader

    def _read_failed(self) -> None:
        # The next read gets a fresh connection, whatever state this one was left in.
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    async def transact(self, work: Callable[[WriteConnection], Awaitable[T]]) -> T:
        """Run `work` in one write transaction. `work` must be safe to rerun (busy retries).

        On SQLite it runs on a synchronous connection in the event loop thread, so the whole
        transaction is a few hundred microseconds without a thread hop; `work` must therefore
        await nothing but the connection's `execute`. The write lock is taken up front with
        BEGIN IMMEDIATE and, when another process holds it, waited for asynchronously."""
        if self._writer is None:
            return await transact(self.engine, work)
        delay = 0.0005
        deadline = time.monotonic() + _LOCK_WAIT
        while True:
            writer = self._write_connection()
            # BEGIN and COMMIT straight on sqlite3: through SQLAlchemy each cost more than
            # the statements of a small transaction.
            raw = writer.raw
            try:
                raw.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                busy = "locked" in str(exc) or "busy" in str(exc)
                if not busy or time.monotonic() > deadline:
                    raise _wrapped("BEGIN IMMEDIATE", exc) from exc
            else:
                try:
                    result = await work(writer)
                    raw.execute("COMMIT")
                except BaseException as exc:
                    self._rollback(writer)
                    if isinstance(exc, sqlite3.Error):
                        raise _wrapped("COMMIT", exc) from exc
                    raise
                return result
            # Another process holds the lock; its transactions take well under a millisecond.
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.005)

    def _write_connection(self) -> _SyncWriter:
        # Kept open like the reader: transactions on one event loop never interleave (`work`
        # awaits only `execute`, which does not suspend), so they can share it.
        writer = self._writer_conn
        if writer is None:
            assert self._writer is not None
            writer = self._writer_conn = _SyncWriter(self._writer.connect(), self._write_statements)
        return writer

    def _rollback(self, writer: _SyncWriter) -> None:
        try:
            if writer.raw.in_transaction:
                writer.raw.execute("ROLLBACK")
            writer.reset()
        except (sqlite3.Error, DBAPIError):
            # The next transaction gets a fresh connection, whatever state this one is in.
            self._writer_conn = None
            writer.close()

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._sync is not None:
            self._sync.dispose()
        if self._writer_conn is not None:
            self._writer_conn.close()
            self._writer_conn = None
        if self._writer is not None:
            self._writer.dispose()
        if self._checkpoints is not None:
            self._checkpoints.close()
            self._checkpoints = None


class _Reading:
    """`Database.read()` on SQLite: a plain context manager (an async generator's costs a
    blob HEAD more than its one SELECT), shared by every read, since its state is the
    database's."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def __aenter__(self) -> ReadConnection:
        return await self._db._reader_connection()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: object, tb: object
    ) -> None:
        if isinstance(exc, DBAPIError):
            self._db._read_failed()


def _wrapped(statement: str, exc: sqlite3.Error) -> BaseException:
    """`exc` as SQLAlchemy raises it (OperationalError, IntegrityError, ...)."""
    return DBAPIError.instance(statement, None, exc, sqlite3.Error)


def _sync_engine(url: str, *, query_only: bool) -> Engine:
    # One connection for the event loop thread: its users never suspend mid-use, so they
    # never interleave.
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
        # Never block the event loop on another process's lock: writers wait in transact().
        cursor.execute("PRAGMA busy_timeout=0" if not query_only else "PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        if not query_only:
            cursor.execute("PRAGMA wal_autocheckpoint=0")  # registry.db.wal_checkpoints does them
        cursor.execute("PRAGMA foreign_keys=ON")
        if query_only:
            cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    return engine
