"""What only PostgreSQL has: replicas migrating one database at once, and the pool settings.
(The whole API suite runs on PostgreSQL too, through the `database_url` fixture.)"""

from __future__ import annotations

import os
import subprocess

import pytest
import sqlalchemy.exc
from alembic.script import ScriptDirectory
from sqlalchemy import text

from registry.config import DatabasePoolConfig
from registry.db import Database, alembic_config
from tests.support.postgres import PostgresServer
from tests.support.server import berth_executable

pytestmark = pytest.mark.postgres


def test_replicas_starting_together_migrate_once(
    postgres_server: PostgresServer, tmp_path: os.PathLike[str]
) -> None:
    name = postgres_server.create_database()  # empty: no template
    url = postgres_server.url(name)
    try:
        starters = [
            subprocess.Popen(
                [berth_executable(), "migrate", "--data-dir", str(tmp_path)],
                env={**os.environ, "BERTH_DATABASE_URL": url},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(4)
        ]
        outputs = [proc.communicate(timeout=120)[0] for proc in starters]
        assert [proc.returncode for proc in starters] == [0] * 4, outputs
        head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
        assert postgres_server.sql("SELECT version_num FROM alembic_version", name).split() == [
            head
        ]
        tables = postgres_server.sql(
            "SELECT count(*) FROM pg_tables WHERE tablename = 'repositories'", name
        )
        assert tables.strip() == "1"
    finally:
        postgres_server.drop_database(name)


async def test_pool_settings_bound_the_connections(postgres_url: str) -> None:
    db = Database(postgres_url, DatabasePoolConfig(size=2, maxoverflow=1, timeout=0.3))
    try:
        held = [await db.engine.connect() for _ in range(3)]
        for conn in held:
            assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
        with pytest.raises(sqlalchemy.exc.TimeoutError, match="size 2 overflow 1"):
            async with db.engine.connect():
                pass
        for conn in held:
            await conn.close()
        async with db.engine.connect() as conn:  # a connection came back: no wait
            assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
    finally:
        await db.dispose()
