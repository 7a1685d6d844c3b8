"""The Alembic migrations on both engines: up to head gives exactly the tables the code
declares (registry.db.models), down to base removes them all, and up again works."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from registry.db import alembic_config, make_engine, upgrade
from registry.db.models import metadata
from tests.support.postgres import DATABASES, PostgresServer


@pytest.fixture(params=DATABASES)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = server.create_database()
    yield server.url(name)
    server.drop_database(name)


def _inspect(url: str) -> tuple[set[str], list[object]]:
    """The tables, and how the schema differs from the models (autogenerate's diff)."""

    def look(conn: Connection) -> tuple[set[str], list[object]]:
        tables = set(inspect(conn).get_table_names())
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
        return tables, list(diff)

    async def run() -> tuple[set[str], list[object]]:
        engine = make_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(look)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _downgrade(url: str) -> None:
    # Alembic's env runs its own loop; pytest-asyncio may have one in this thread.
    thread = threading.Thread(target=command.downgrade, args=(alembic_config(url), "base"))
    thread.start()
    thread.join()


def test_up_down_up_matches_the_models(empty_url: str) -> None:
    upgrade(empty_url)
    tables, diff = _inspect(empty_url)
    assert {t.name for t in metadata.sorted_tables} | {"alembic_version"} == tables
    assert diff == []
    _downgrade(empty_url)
    tables, _ = _inspect(empty_url)
    assert tables <= {"alembic_version"}
    upgrade(empty_url)
    assert _inspect(empty_url)[1] == []
