"""Statements on SQLite's hot path (registry.db.sqlite_direct) answer exactly as SQLAlchemy
does: the same rows, types, defaults, row counts and errors, and whatever a plan does not
cover still runs."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    Table,
    bindparam,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError, MultipleResultsFound, NoResultFound

from registry.db import Database, WriteConnection, insert_ignore, upgrade
from registry.db.models import as_utc, blobs, manifests, repositories, upload_sessions
from registry.db.sqlite_direct import DirectResult

_BY_NAME = select(repositories.c.id, repositories.c.name).where(
    repositories.c.name == bindparam("name")
)
_ALL_NAMES = select(repositories.c.name).order_by(repositories.c.name)
_NEW_REPO = insert(repositories)
_NEW_SESSION = insert(upload_sessions)
_SESSION = select(upload_sessions.c.started_at, upload_sessions.c.state).where(
    upload_sessions.c.id == bindparam("id")
)
_RENAME = (
    update(repositories)
    .where(repositories.c.name == bindparam("old"))
    .values(name=bindparam("new"))
)
_DROP_SESSIONS = delete(upload_sessions)
_NAMES_IN = select(repositories.c.name).where(repositories.c.name.in_(["a", "b"]))


@pytest.fixture
def db(tmp_path: Path) -> Database:
    url = f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}"
    upgrade(url)
    return Database(url)


async def _twice(db: Database, statement: Any, params: dict[str, Any] | None = None) -> Any:
    """Read through SQLAlchemy (first sight), then through the plan; both results."""
    async with db.read() as conn:
        first = await conn.execute(statement, params)
        first_rows = first.all()
        second = await conn.execute(statement, params)
        assert isinstance(second, DirectResult), "the second run takes the direct path"
        return first_rows, second.all()


async def test_rows_and_types_match_sqlalchemy(db: Database) -> None:
    async def work(conn: WriteConnection) -> None:
        for name in ("b", "a", "c"):
            await conn.execute(_NEW_REPO, {"name": name})
        await conn.execute(_NEW_SESSION, {"id": "u1", "repository_id": 1, "state": b"\x00st"})

    await db.transact(work)
    via_sqlalchemy, direct = await _twice(db, _ALL_NAMES)
    assert [r.name for r in direct] == [r.name for r in via_sqlalchemy] == ["a", "b", "c"]
    sa_rows, direct_rows = await _twice(db, _SESSION, {"id": "u1"})
    (sa_row,), (row,) = sa_rows, direct_rows
    assert row.state == sa_row.state == b"\x00st"
    assert isinstance(row.started_at, datetime)  # the DateTime result processor ran
    assert as_utc(row.started_at) == as_utc(sa_row.started_at)
    assert abs((datetime.now(UTC) - as_utc(row.started_at)).total_seconds()) < 60
    assert row._mapping == {"started_at": row.started_at, "state": b"\x00st"}
    row_id, name = (await _twice(db, _BY_NAME, {"name": "c"}))[1][0]
    assert (row_id, name) == (3, "c")


async def test_defaults_rowcount_and_one(db: Database) -> None:
    async def insert_repos(conn: WriteConnection) -> None:
        for name in ("x", "y"):
            await conn.execute(_NEW_REPO, {"name": name})  # created_at: the Python default

    await db.transact(insert_repos)

    async def rename(conn: WriteConnection) -> tuple[int, int]:
        first = await conn.execute(_RENAME, {"old": "x", "new": "x2"})
        second = await conn.execute(_RENAME, {"old": "nope", "new": "z"})
        return first.rowcount, second.rowcount

    assert await db.transact(rename) == (1, 0)
    assert await db.transact(rename) == (0, 0)  # planned by now: x is gone
    async with db.read() as conn:
        for _ in range(2):
            created = (
                await conn.execute(select(repositories.c.created_at).where(repositories.c.id == 2))
            ).scalar_one()
            assert isinstance(created, datetime)
            assert (await conn.execute(_BY_NAME, {"name": "y"})).scalar_one() == 2
            assert (await conn.execute(_BY_NAME, {"name": "none"})).scalar_one_or_none() is None
            assert (await conn.execute(_BY_NAME, {"name": "none"})).first() is None
            with pytest.raises(NoResultFound):
                (await conn.execute(_BY_NAME, {"name": "none"})).one()
            with pytest.raises(MultipleResultsFound):
                (await conn.execute(_ALL_NAMES)).one_or_none()
            assert (await conn.execute(_ALL_NAMES)).scalars().all() == ["x2", "y"]
            assert [n for n in (await conn.execute(_ALL_NAMES)).scalars()] == ["x2", "y"]


async def test_a_value_default_is_planned_and_filled_in(db: Database) -> None:
    # blobs.state defaults to "live": the INSERT a push runs for every blob
    async def new_blobs(conn: WriteConnection) -> list[bool]:
        plain = []
        for n in range(3):
            result = await conn.execute(
                insert_ignore(conn, blobs, ["digest"]), {"digest": f"sha256:{n}", "size": n}
            )
            plain.append(isinstance(result, DirectResult))
        given = {"digest": "sha256:g", "size": 1, "state": "deleting"}
        await conn.execute(insert_ignore(conn, blobs, ["digest"]), given)
        return plain

    assert await db.transact(new_blobs) == [False, True, True]
    async with db.read() as conn:
        rows = (await conn.execute(select(blobs.c.digest, blobs.c.state))).all()
    assert sorted(rows) == [
        ("sha256:0", "live"), ("sha256:1", "live"), ("sha256:2", "live"), ("sha256:g", "deleting")
    ]  # fmt: skip


async def test_times_are_written_as_sqlalchemy_writes_them(db: Database) -> None:
    """Hold expiries are compared as text in SQL: a time bound through a plan must be the very
    text SQLAlchemy binds, whatever its zone or microseconds (and a date or None too)."""
    naive = datetime(2026, 12, 1, 14, 5, 6)
    moments: list[datetime | date | None] = [
        naive,
        naive.replace(microsecond=7),
        datetime(1, 1, 1, 0, 0, 0, 1),
        datetime(9999, 12, 31, 23, 59, 59, 999999),
        datetime.now(UTC),
        naive.replace(tzinfo=timezone(timedelta(hours=-5)), microsecond=999999),
        date(2020, 1, 2),
        None,
    ]
    touch = update(upload_sessions).where(upload_sessions.c.id == bindparam("_id"))
    touch = touch.values(updated_at=bindparam("_at"), hold_expires_at=bindparam("_expires"))

    async def work(conn: WriteConnection) -> list[bool]:
        await conn.execute(_NEW_REPO, {"name": "r"})
        direct = []
        for n, moment in enumerate(moments):
            await conn.execute(_NEW_SESSION, {"id": f"u{n}", "repository_id": 1})
            values = {"_id": f"u{n}", "_at": naive, "_expires": moment}
            direct.append(isinstance(await conn.execute(touch, values), DirectResult))
        return direct

    assert await db.transact(work) == [False] + [True] * (len(moments) - 1)
    expected = DateTime().dialect_impl(sqlite.dialect()).bind_processor(sqlite.dialect())
    assert expected is not None
    url = db.url.replace("sqlite+aiosqlite:///", "", 1)
    with contextlib.closing(sqlite3.connect(url)) as raw:
        stored = dict(raw.execute("SELECT id, hold_expires_at FROM upload_sessions").fetchall())
    assert [stored[f"u{n}"] for n in range(len(moments))] == [expected(m) for m in moments]


async def test_a_time_column_with_its_own_format_keeps_it(db: Database) -> None:
    """A DATETIME declared with a storage format of its own is written in that format, also
    through a plan (only SQLAlchemy's default format is made the fast way)."""
    url = db.url.replace("sqlite+aiosqlite:///", "", 1)
    with contextlib.closing(sqlite3.connect(url)) as raw:
        raw.execute("CREATE TABLE stamps (n INTEGER PRIMARY KEY, at DATETIME)")
    stamps = Table(
        "stamps",
        MetaData(),
        Column("n", Integer, primary_key=True),
        Column("at", sqlite.DATETIME(truncate_microseconds=True)),  # type: ignore[no-untyped-call]  # untyped upstream
    )
    new_stamp = insert(stamps)
    moment = datetime(2026, 12, 1, 14, 5, 6, 123456)

    async def work(conn: WriteConnection) -> list[bool]:
        results = [await conn.execute(new_stamp, {"n": n, "at": moment}) for n in range(3)]
        return [isinstance(result, DirectResult) for result in results]

    assert await db.transact(work) == [False, True, True]
    with contextlib.closing(sqlite3.connect(url)) as raw:
        stored = [at for (at,) in raw.execute("SELECT at FROM stamps ORDER BY n")]
    assert stored == ["2026-12-01 14:05:06"] * 3


async def test_errors_are_sqlalchemys_and_the_transaction_rolls_back(db: Database) -> None:
    async def duplicate(conn: WriteConnection) -> None:
        await conn.execute(_NEW_REPO, {"name": "dup"})
        await conn.execute(_NEW_REPO, {"name": "dup"})

    for _ in range(2):  # through SQLAlchemy, then through the plan
        with pytest.raises(IntegrityError):
            await db.transact(duplicate)
    async with db.read() as conn:
        assert (await conn.execute(_BY_NAME, {"name": "dup"})).first() is None


async def test_a_null_set_in_the_statement_is_planned(db: Database) -> None:
    # Ending an upload session sets columns to NULL in the statement itself (`.values(x=None)`):
    # every push runs it, and it used to go through SQLAlchemy every time.
    clear = (
        update(upload_sessions)
        .where(upload_sessions.c.id == bindparam("_id"))
        .values(state=None, holder=None, updated_at=bindparam("_now"))
    )
    now = datetime(2026, 1, 2, 3, 4, 5)

    async def work(conn: WriteConnection) -> list[tuple[bool, int]]:
        await conn.execute(_NEW_REPO, {"name": "r"})
        for n in range(3):
            row = {"id": f"u{n}", "repository_id": 1, "state": b"s", "holder": "h"}
            await conn.execute(_NEW_SESSION, row)
        runs = []
        for n in range(3):
            result = await conn.execute(clear, {"_id": f"u{n}", "_now": now})
            runs.append((isinstance(result, DirectResult), result.rowcount))
        return runs

    assert await db.transact(work) == [(False, 1), (True, 1), (True, 1)]
    columns = upload_sessions.c
    async with db.read() as conn:
        rows = (await conn.execute(select(columns.state, columns.holder, columns.updated_at))).all()
    assert [tuple(r) for r in rows] == [(None, None, now)] * 3


async def test_what_a_plan_does_not_cover_still_runs(db: Database) -> None:
    async def work(conn: WriteConnection) -> None:
        await conn.execute(_NEW_REPO, [{"name": "a"}, {"name": "b"}])  # executemany

    await db.transact(work)
    async with db.read() as conn:
        for _ in range(3):  # an expanding IN list is never planned
            result = await conn.execute(_NAMES_IN)
            assert not isinstance(result, DirectResult)
            assert sorted(result.scalars().all()) == ["a", "b"]
            # a statement built per call is never seen twice
            fresh = await conn.execute(select(manifests.c.id).where(manifests.c.id == 1))
            assert not isinstance(fresh, DirectResult)
            assert fresh.first() is None


async def test_concurrent_readers_each_see_their_rows(db: Database) -> None:
    async def work(conn: WriteConnection) -> None:
        for i in range(50):
            await conn.execute(_NEW_REPO, {"name": f"r{i:02d}"})

    await db.transact(work)

    async def look(i: int) -> int:
        async with db.read() as conn:
            found: int = (await conn.execute(_BY_NAME, {"name": f"r{i:02d}"})).one().id
        await asyncio.sleep(0)
        return found

    assert await asyncio.gather(*(look(i) for i in range(50))) == list(range(1, 51))
