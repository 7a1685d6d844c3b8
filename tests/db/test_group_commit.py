"""SQLite group commit (registry.db.Database.transact): the transactions begun in one turn of
the event loop share one COMMIT; each caller still gets its own result, its own failure, and
returns only once its work is committed."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from registry.db import Database, WriteConnection, upgrade

_INSERT = text("INSERT INTO notes (body) VALUES (:body)")


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}"
    upgrade(url)
    database = Database(url)

    async def tables(conn: WriteConnection) -> None:
        await conn.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT UNIQUE)"))
        await conn.execute(text("CREATE TABLE parents (id INTEGER PRIMARY KEY)"))
        await conn.execute(text(
            "CREATE TABLE children (parent INTEGER REFERENCES parents (id)"
            " DEFERRABLE INITIALLY DEFERRED)"
        ))  # fmt: skip

    await database.transact(tables)
    yield database
    await database.dispose()


async def _bodies(db: Database) -> list[str]:
    async with db.read() as conn:
        rows = await conn.execute(text("SELECT body FROM notes ORDER BY body"))
        return [row.body for row in rows]


Work = Callable[[WriteConnection], Awaitable[object]]


def _note(body: str, *, fail: bool = False) -> Work:
    async def work(conn: WriteConnection) -> str:
        await conn.execute(_INSERT, {"body": body})
        if fail:
            raise LookupError(body)
        return body

    return work


async def _commits(db: Database, calls: list[Work]) -> tuple[list[object], int]:
    """Run `calls` (works) concurrently; their outcomes and how many COMMITs ran."""
    commits = 0
    commit = db._commit

    def counted(batch: object) -> None:
        nonlocal commits
        commits += 1
        commit(batch)  # type: ignore[arg-type]

    db._commit = counted  # type: ignore[method-assign]
    try:
        outcomes = await asyncio.gather(
            *(db.transact(work) for work in calls),
            return_exceptions=True,
        )
    finally:
        db._commit = commit  # type: ignore[method-assign]
    return list(outcomes), commits


async def test_one_turns_transactions_share_one_commit(db: Database) -> None:
    outcomes, commits = await _commits(db, [_note(f"n{i}") for i in range(20)])
    assert outcomes == [f"n{i}" for i in range(20)]
    assert commits == 1
    assert await _bodies(db) == sorted(f"n{i}" for i in range(20))


async def test_a_failing_work_undoes_only_its_own_writes(db: Database) -> None:
    calls = [_note("a"), _note("b", fail=True), _note("c"), _note("a")]  # the last: a duplicate
    outcomes, commits = await _commits(db, calls)
    assert (outcomes[0], outcomes[2]) == ("a", "c")
    assert isinstance(outcomes[1], LookupError)
    assert isinstance(outcomes[3], IntegrityError)
    assert commits == 1
    assert await _bodies(db) == ["a", "c"]


async def test_the_first_work_failing_leaves_the_others_theirs(db: Database) -> None:
    outcomes, _ = await _commits(db, [_note("x", fail=True), _note("y"), _note("z")])
    assert isinstance(outcomes[0], LookupError)
    assert outcomes[1:] == ["y", "z"]
    assert await _bodies(db) == ["y", "z"]


async def test_a_failed_commit_fails_every_caller_of_the_batch(db: Database) -> None:
    async def orphan(conn: WriteConnection) -> None:  # a deferred foreign key: COMMIT refuses
        await conn.execute(text("INSERT INTO children (parent) VALUES (42)"))

    outcomes, commits = await _commits(db, [_note("p"), orphan, _note("q")])
    assert commits == 1
    assert all(isinstance(o, IntegrityError) for o in outcomes), outcomes
    assert await _bodies(db) == []
    assert await db.transact(_note("after")) == "after"
    assert await _bodies(db) == ["after"]


async def test_a_cancellation_during_the_commit_lands_after_it(db: Database) -> None:
    returned: list[str] = []

    async def caller() -> None:
        returned.append(str(await db.transact(_note("kept"))))
        await asyncio.sleep(0)  # the cancellation is delivered here
        returned.append("not reached")

    task = asyncio.create_task(caller())
    await asyncio.sleep(0)  # the task has run its work and waits for the COMMIT
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert returned == ["kept"]  # the caller saw its work done...
    assert await _bodies(db) == ["kept"]  # ...and it is committed


async def test_a_transaction_inside_a_work_is_refused(db: Database) -> None:
    async def nested(conn: WriteConnection) -> None:
        await conn.execute(_INSERT, {"body": "outer"})
        await db.transact(_note("inner"))

    with pytest.raises(RuntimeError, match="inside a transaction"):
        await db.transact(nested)
    assert await _bodies(db) == []


async def test_callers_that_waited_for_another_process_join_as_others(
    db: Database, tmp_path: Path
) -> None:
    # Another process holds the write lock: every caller waits, and those that wake in the
    # turn a batch begins join it. A joiner's failure must undo its own work only.
    other = sqlite3.connect(tmp_path / "registry.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    calls = [_note(f"w{i}", fail=i % 2 == 1) for i in range(40)]
    waiting = asyncio.gather(*(db.transact(work) for work in calls), return_exceptions=True)
    await asyncio.sleep(0.05)
    other.execute("COMMIT")
    other.close()
    outcomes = await waiting
    assert [o for o in outcomes[::2]] == [f"w{i}" for i in range(0, 40, 2)]
    assert all(isinstance(o, LookupError) for o in outcomes[1::2])
    assert await _bodies(db) == sorted(f"w{i}" for i in range(0, 40, 2))
