"""Turns at SQLite's write lock (registry.db.write_turns): worker processes hand the lock over
instead of polling for it, a dead holder's turn passes on, and a caller that gives up waiting
does not keep the turn from the others."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from registry.db import Database, WriteConnection, upgrade
from registry.db.write_turns import WriteTurns

REPO = Path(__file__).resolve().parents[2]
_INSERT = text("INSERT INTO notes (body) VALUES (:body)")
_HOLD_TURN = """
import sys
from registry.db.write_turns import WriteTurns
assert WriteTurns(sys.argv[1]).take()
print("held", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}"
    upgrade(url)
    return url


@pytest.fixture
async def db(url: str) -> AsyncIterator[Database]:
    database = Database(url)
    await database.transact(
        lambda conn: conn.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
    )
    yield database
    await database.dispose()


@pytest.fixture
def turn_holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the database's write turn until its stdin closes."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD_TURN, str(tmp_path / "registry.db")],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "held\n"
    yield proc
    proc.kill()
    proc.wait()
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            pipe.close()


def _write_notes(url: str, who: str, count: int, start: Any, out: Any) -> None:
    """In a process of its own, once both are ready: `count` transactions, 8 at a time; puts
    the BEGINs that found the lock taken."""

    async def main() -> int:
        db = Database(url)
        gate = asyncio.Semaphore(8)

        async def one(i: int) -> None:
            async def work(conn: WriteConnection) -> None:
                await conn.execute(_INSERT, {"body": f"{who}{i}"})

            async with gate:
                await db.transact(work)

        start.wait()
        await asyncio.gather(*(one(i) for i in range(count)))
        await db.dispose()
        return db.lock_retries

    out.put(asyncio.run(main()))


async def _count(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM notes"))).scalar_one())


async def test_two_processes_hand_the_lock_over_without_a_retry(db: Database, url: str) -> None:
    spawn = multiprocessing.get_context("spawn")
    start, out = spawn.Barrier(2), spawn.Queue()
    writers = [
        spawn.Process(target=_write_notes, args=(url, who, 1500, start, out)) for who in "ab"
    ]
    for writer in writers:
        writer.start()
    retries = [out.get(timeout=120) for _ in writers]
    for writer in writers:
        writer.join()
    assert await _count(db) == 3000
    # Waiting in turn, no BEGIN IMMEDIATE ever met the other's lock (polling for it met it
    # hundreds of times here).
    assert retries == [0, 0]


async def test_a_writer_waits_for_the_turn_and_gets_it_when_its_holder_dies(
    db: Database, turn_holder: subprocess.Popen[str]
) -> None:
    async def work(conn: WriteConnection) -> None:
        await conn.execute(_INSERT, {"body": "after"})

    waiting = asyncio.ensure_future(db.transact(work))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    os.kill(turn_holder.pid, signal.SIGKILL)
    await asyncio.wait_for(waiting, 10)
    assert await _count(db) == 1


async def test_a_caller_that_gives_up_leaves_the_turn_to_others(
    db: Database, turn_holder: subprocess.Popen[str], tmp_path: Path
) -> None:
    async def work(conn: WriteConnection) -> None:
        await conn.execute(_INSERT, {"body": "never"})

    waiting = asyncio.ensure_future(db.transact(work))
    await asyncio.sleep(0.2)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert turn_holder.stdin is not None
    turn_holder.stdin.close()  # the holder lets go: this process's waiting thread gets the turn
    turn_holder.wait()
    other = WriteTurns(str(tmp_path / "registry.db"))
    for _ in range(100):  # ... and, with nobody left to use it, gives it back
        await asyncio.sleep(0.02)
        if other.take():
            break
    else:
        pytest.fail("the turn was kept by a process with no transaction to run")
    other.give_back()
    assert await _count(db) == 0
