"""SQL metadata: tables, the engine, write transactions and migrations."""

from registry.db.engine import insert_ignore, make_engine, transact, upsert
from registry.db.migrate import alembic_config, upgrade

__all__ = ["alembic_config", "insert_ignore", "make_engine", "transact", "upgrade", "upsert"]
