"""A throwaway PostgreSQL cluster for the tests: one per session, a fresh database per test.

The cluster (Debian's PostgreSQL, `initdb` as the postgres user, trust auth, no fsync) listens
on 127.0.0.1 on a free port and lives in a temp dir. Migrations run once, into a template
database; each test gets `CREATE DATABASE .. TEMPLATE`, a file copy: ~0.13 s with the drop.

Fixtures (exported to every test directory by tests/conftest.py):
    postgres_server   the session's cluster (started on first use)
    postgres_url      a fresh migrated database for one test, dropped afterwards
    database_url      parametrized: a fresh migrated SQLite file, and a PostgreSQL database
                      (marked `postgres`, so `make test-fast` runs SQLite only)
    db                the same, opened as a `registry.db.Database`
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from registry.db import Database, upgrade
from tests.support.server import free_port

TEMPLATE = "berth_template"
DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    assert found, "PostgreSQL is not installed (scripts/test-env.sh installs it)"
    return found[-1].parent


@dataclass
class PostgresServer:
    port: int
    directory: Path

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one statement through psql; its output, unaligned."""
        result = subprocess.run(
            [
                str(pg_bin() / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-c",
                statement,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, f"psql {statement!r}: {result.stderr}"
        return result.stdout

    def create_database(self, template: str | None = None) -> str:
        name = "t_" + uuid.uuid4().hex[:12]
        # FILE_COPY: ~75 ms to create and ~50 ms to drop here; the default WAL_LOG copy
        # makes the DROP take half a second.
        copy = f" TEMPLATE {template} STRATEGY FILE_COPY" if template else ""
        self.sql(f"CREATE DATABASE {name}{copy}")
        return name

    def drop_database(self, name: str) -> None:
        self.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def log(self) -> str:
        return (self.directory / "log").read_text(errors="replace")


def _as_postgres(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", "postgres", "--", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@contextlib.contextmanager
def running_postgres(max_connections: int = 300) -> Iterator[PostgresServer]:
    """Start a cluster in a new temp dir; stop it (by pg_ctl, which signals its PID) and
    remove the dir on exit."""
    directory = Path(tempfile.mkdtemp(prefix="berth-pg-"))
    shutil.chown(directory, "postgres")
    data = directory / "data"
    init = _as_postgres(
        str(pg_bin() / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"
    )
    assert init.returncode == 0, init.stderr
    port = free_port()
    options = (
        f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off "
        f"-c synchronous_commit=off -c full_page_writes=off -c max_connections={max_connections}"
    )
    pg_ctl = str(pg_bin() / "pg_ctl")
    started = _as_postgres(
        pg_ctl, "-D", str(data), "-o", options, "-l", str(directory / "log"), "-w", "start"
    )
    try:
        assert started.returncode == 0, started.stderr + (directory / "log").read_text()
        yield PostgresServer(port, directory)
    finally:
        _as_postgres(pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        server.sql(f"CREATE DATABASE {TEMPLATE}")
        upgrade(server.url(TEMPLATE))
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    name = postgres_server.create_database(TEMPLATE)
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "registry.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path, _sqlite_template: Path) -> str:
    """A migrated database of each engine, fresh for the test."""
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    path = tmp_path / "db" / "registry.db"
    path.parent.mkdir()
    shutil.copy(_sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """`database_url` opened as a `registry.db.Database`, disposed afterwards."""
    db = Database(database_url)
    yield db
    await db.dispose()
