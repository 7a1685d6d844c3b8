"""The async engine, with SQLite tuned for many processes, and helpers for concurrent writes."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, Protocol, TypeVar

from sqlalchemy import Table, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection as SyncConnection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ColumnElement

from registry.config import DatabasePoolConfig

log = logging.getLogger(__name__)
T = TypeVar("T")

_WRITE: Final = "berth_write"
_BUSY_RETRIES: Final = 8
_SQLITE_POOL: Final = 32


def make_engine(url: str, pool: DatabasePoolConfig | None = None) -> AsyncEngine:
    """An async engine. For SQLite: WAL, busy_timeout, synchronous=NORMAL on every connection,
    and write transactions that take the write lock up front (BEGIN IMMEDIATE) so that two
    processes never deadlock upgrading a read lock. Reads run without BEGIN (each statement
    is its own snapshot in WAL), which saves two thread hops per request on aiosqlite.
    Other databases (PostgreSQL) get a connection pool sized by `pool` (database.pool)."""
    if ":memory:" in url:
        return create_async_engine(url)
    if not url.startswith("sqlite"):
        pool = pool or DatabasePoolConfig()
        return create_async_engine(
            url,
            pool_size=pool.size,
            max_overflow=pool.maxoverflow,
            pool_timeout=pool.timeout,
            pool_pre_ping=True,  # a restarted or failed-over server leaves dead connections
        )
    # A fixed pool: opening an aiosqlite connection starts a thread, so no churn under load.
    # Nothing is left open to roll back: writes end in commit or rollback inside `transact`.
    engine = create_async_engine(
        url, pool_size=_SQLITE_POOL, max_overflow=0, pool_timeout=60, pool_reset_on_return=None
    )
    _tune_sqlite(engine)
    return engine


def _tune_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: SyncConnection) -> None:
        if conn.get_execution_options().get(_WRITE, False):
            conn.exec_driver_sql("BEGIN IMMEDIATE")


async def transact(engine: AsyncEngine, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run `work` in one write transaction, retrying it when SQLite reports the database busy
    (another process held the write lock past busy_timeout). `work` must be safe to rerun."""
    for attempt in range(_BUSY_RETRIES):
        try:
            async with engine.connect() as conn:
                conn = await conn.execution_options(**{_WRITE: True})
                async with conn.begin():
                    return await work(conn)
        except DBAPIError as exc:
            if not _retryable(exc) or attempt == _BUSY_RETRIES - 1:
                raise
            log.warning("database busy or deadlocked, retrying (attempt %d)", attempt + 1)
            await asyncio.sleep(0.05 * (2**attempt))
    raise AssertionError("unreachable")


class _HasDialect(Protocol):
    @property
    def dialect(self) -> Dialect: ...


def _retryable(exc: DBAPIError) -> bool:
    """SQLite busy/locked past busy_timeout; PostgreSQL deadlock or serialization failure."""
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if code in {"40P01", "40001"}:
        return True
    text = str(exc.orig)
    return isinstance(exc, OperationalError) and ("locked" in text or "busy" in text)


def insert_ignore(conn: _HasDialect, table: Table, keys: list[str]) -> Insert:
    """INSERT .. ON CONFLICT (keys) DO NOTHING, for the connection's dialect. Built once per
    dialect and table: on hot paths execute it with the row as parameters, since a statement
    chained with `.values()` is built and keyed for the compiled cache anew on every call."""
    return _insert_ignore(conn.dialect.name, table, tuple(keys))


@functools.lru_cache(maxsize=64)
def _insert_ignore(dialect: str, table: Table, keys: tuple[str, ...]) -> Insert:
    return dialect_insert(dialect, table).on_conflict_do_nothing(index_elements=list(keys))  # type: ignore[no-any-return]  # dialect inserts are untyped


def upsert_row(conn: _HasDialect, table: Table, keys: list[str], columns: list[str]) -> Insert:
    """INSERT .. ON CONFLICT (keys) DO UPDATE SET the other `columns`, built once per dialect
    and table like `insert_ignore`: execute it with the row (every column) as parameters."""
    return _upsert_row(conn.dialect.name, table, tuple(keys), tuple(columns))


@functools.lru_cache(maxsize=64)
def _upsert_row(
    dialect: str, table: Table, keys: tuple[str, ...], columns: tuple[str, ...]
) -> Insert:
    stmt = dialect_insert(dialect, table)
    update = {c: stmt.excluded[c] for c in columns if c not in keys}
    return stmt.on_conflict_do_update(index_elements=list(keys), set_=update)  # type: ignore[no-any-return]  # dialect inserts are untyped


def upsert(
    conn: _HasDialect,
    table: Table,
    keys: list[str],
    values: Mapping[str, object],
    where: ColumnElement[bool] | None = None,
) -> Insert:
    """INSERT .. ON CONFLICT (keys) DO UPDATE SET the other columns of `values` [WHERE where]."""
    stmt = dialect_insert(conn.dialect.name, table).values(**values)
    update = {k: stmt.excluded[k] for k in values if k not in keys}
    return stmt.on_conflict_do_update(index_elements=keys, set_=update, where=where)  # type: ignore[no-any-return]  # dialect inserts are untyped


def dialect_insert(dialect: str, table: Table) -> Any:
    """The dialect's INSERT (with ON CONFLICT) for `table`."""
    if dialect == "sqlite":
        return sqlite.insert(table)
    if dialect == "postgresql":
        return postgresql.insert(table)
    raise NotImplementedError(f"database dialect {dialect!r} is not supported")
