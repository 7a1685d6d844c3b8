"""Alembic migrations for the registry's SQL metadata (see registry.db.migrate.upgrade)."""
