"""`berth gc --retention`: apply the retention rules before the collection pass."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING

from berth.cli import CommandError

if TYPE_CHECKING:
    from registry.config import Config
    from registry.retention import RetentionReport


def add_retention_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--retention",
        action="store_true",
        help="first delete the tags the retention rules no longer keep (retention:); "
        "with --dry-run, list them",
    )


def apply_retention(config: Config, *, dry_run: bool) -> RetentionReport:
    """Delete (or list) the tags `config.retention` no longer keeps, on a migrated database."""
    if not config.retention:
        raise CommandError("--retention: the config has no retention rules (retention:)")
    return asyncio.run(_apply(config, dry_run))


async def _apply(config: Config, dry_run: bool) -> RetentionReport:
    from registry.db import Database, upgrade
    from registry.retention import Retention

    await asyncio.to_thread(upgrade, config.database_url)
    db = Database(config.database_url)
    try:
        return await Retention.from_config(config).run(db, dry_run=dry_run)
    finally:
        await db.dispose()
