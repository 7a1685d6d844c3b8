"""Shared pytest setup. Package-specific fixtures live in each tests/<area>/conftest.py."""

from tests.support.postgres import (  # noqa: F401  (fixtures for every test directory)
    _sqlite_template,
    database_url,
    db,
    postgres_server,
    postgres_url,
)
