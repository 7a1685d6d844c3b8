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
from registry.db.write_turns import WriteTurns

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
        self._turns: WriteTurns | None = None
        self.lock_retries = 0  # BEGIN IMMEDIATE that found the lock taken, for tests
        self._writer_conn: _SyncWriter | None = None
        self._batch: _Batch | None = None
        self._reading = _Reading(self)
        if url.startswith("sqlite+aiosqlite:///") and ":memory:" not in url:
            sync_url = url.replace("sqlite+aiosqlite:", "sqlite+pysqlite:", 1)
            self._sync = _sync_engine(sync_url, query_only=True)
            self._writer = _sync_engine(sync_url, query_only=False)
            self._read_statements = Statements(self._sync.dialect)
            self._write_statements = Statements(self._writer.dialect)
            self._checkpoints = Checkpointer(str(make_url(url).database))
            self._turns = WriteTurns(str(make_url(url).database))

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
        BEGIN IMMEDIATE and, when another process holds it, waited for asynchronously.

        Group commit: the transactions begun in one turn of the event loop share one
        SQLite transaction, committed at the start of the next turn, each after the first in
        a savepoint of its own (its failure undoes only its own work). BEGIN and COMMIT cost
        more than a small transaction's statements, and each COMMIT makes the other workers
        reread their page caches; the callers of a turn are served in about the time of one.
        A caller returns once the COMMIT is done, and fails if it fails."""
        if self._writer is None:
            return await transact(self.engine, work)
        batch = self._batch or await self._begin()
        if batch.working:
            raise RuntimeError("transact() called from inside a transaction's work")
        first = not batch.used  # nobody else's work to keep: no savepoint needed
        batch.used = True
        raw = batch.writer.raw
        if not first:
            raw.execute("SAVEPOINT batched")
        batch.working = True
        try:
            result = await work(batch.writer)
        except BaseException as exc:
            batch.working = False
            self._undo(batch, first)
            if isinstance(exc, sqlite3.Error):
                raise _wrapped("COMMIT", exc) from exc
            raise
        batch.working = False
        if not first:
            try:
                raw.execute("RELEASE batched")
            except sqlite3.Error as exc:
                self._undo(batch, first=True)
                raise _wrapped("RELEASE", exc) from exc
        await _committed(batch.committed)
        return result

    async def _begin(self) -> _Batch:
        """BEGIN IMMEDIATE in this process's turn (registry.db.write_turns), waiting
        asynchronously for it and, when a writer that takes no turns holds the lock, for that;
        or the batch another caller of this process began meanwhile."""
        delay = 0.0005
        deadline = time.monotonic() + _LOCK_WAIT
        turns = self._turns
        assert turns is not None
        while True:
            if self._batch is not None:
                return self._batch
            writer = self._write_connection()  # before the turn: opening may fail
            if not turns.take():
                try:
                    await asyncio.wait_for(turns.wait(), max(deadline - time.monotonic(), 0))
                except TimeoutError:
                    locked = sqlite3.OperationalError("database is locked")
                    raise _wrapped("BEGIN IMMEDIATE", locked) from None
                continue
            # BEGIN and COMMIT straight on sqlite3: through SQLAlchemy each cost more than
            # the statements of a small transaction.
            try:
                writer.raw.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                busy = "locked" in str(exc) or "busy" in str(exc)
                if not busy or time.monotonic() > deadline:
                    turns.give_back()
                    raise _wrapped("BEGIN IMMEDIATE", exc) from exc
            except BaseException:
                turns.give_back()
                raise
            else:
                loop = asyncio.get_running_loop()
                batch = self._batch = _Batch(writer, loop.create_future())
                batch.commit = loop.call_soon(self._commit, batch)
                return batch
            # A writer outside the turns holds the lock; its transactions are short. The
            # turn is kept meanwhile: this process is next.
            self.lock_retries += 1
            try:
                await asyncio.sleep(delay)
            except BaseException:
                if self._batch is None:
                    turns.give_back()
                raise
            delay = min(delay * 2, 0.005)

    def _commit(self, batch: _Batch) -> None:
        if self._batch is batch:
            self._batch = None
        try:
            batch.writer.raw.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback(batch.writer)
            batch.committed.set_exception(_wrapped("COMMIT", exc))
            batch.committed.exception()  # retrieved: a batch whose callers all failed is fine
        else:
            batch.committed.set_result(None)
        finally:
            self._end_turn()

    def _undo(self, batch: _Batch, first: bool) -> None:
        """Undo a failed work: its savepoint, or (the batch's first, which nobody has joined
        yet, or a savepoint that cannot be undone) the whole transaction."""
        if not first:
            try:
                batch.writer.raw.execute("ROLLBACK TO batched")
                batch.writer.raw.execute("RELEASE batched")
                return
            except sqlite3.Error:
                pass
        if self._batch is batch:
            self._batch = None
        assert batch.commit is not None
        batch.commit.cancel()
        self._rollback(batch.writer)
        # Callers who joined before fail with it (the COMMIT, cancelled above, never ran).
        self._end_turn()
        batch.committed.set_exception(
            _wrapped("ROLLBACK", sqlite3.OperationalError("the transaction was rolled back"))
        )
        batch.committed.exception()

    def _end_turn(self) -> None:
        if self._turns is not None:
            self._turns.give_back()

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
        batch = self._batch
        if batch is not None:  # its callers are waiting for it
            assert batch.commit is not None
            batch.commit.cancel()
            self._commit(batch)
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
        if self._turns is not None:
            self._turns.close()


class _Batch:
    """The write transaction the `transact` calls of one event loop turn share."""

    __slots__ = ("commit", "committed", "used", "working", "writer")

    def __init__(self, writer: _SyncWriter, committed: asyncio.Future[None]) -> None:
        self.writer = writer
        self.committed = committed  # done when COMMIT is
        self.commit: asyncio.Handle | None = None
        self.used = False  # a work has run in it
        self.working = False  # a work is running in it


async def _committed(done: asyncio.Future[None]) -> None:
    """Wait for a batch's COMMIT. A cancellation meanwhile waits for it too, then is delivered
    at the caller's next await: the caller's work is in the batch whatever happens, and must
    not be taken for undone."""
    cancelled = 0
    while not done.done():
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            assert task is not None
            task.uncancel()
            cancelled += 1
    if cancelled:
        task = asyncio.current_task()
        assert task is not None
        for _ in range(cancelled):
            task.cancel()
    done.result()


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
