"""SQL metadata: tables, the engine, write transactions, the read path and migrations."""

from registry.db.database import Database, ReadConnection, Result, WriteConnection
from registry.db.engine import (
    dialect_insert,
    insert_ignore,
    make_engine,
    transact,
    upsert,
    upsert_row,
)
from registry.db.migrate import alembic_config, upgrade

__all__ = [
    "Database",
    "ReadConnection",
    "Result",
    "WriteConnection",
    "alembic_config",
    "dialect_insert",
    "insert_ignore",
    "make_engine",
    "transact",
    "upgrade",
    "upsert",
    "upsert_row",
]
