"""`berth migrate`: apply the database migrations (serve does this at start, too)."""

from __future__ import annotations

import argparse

from berth.cli import CommandError
from berth.commands.serve import add_config_arguments, config_failure, config_from_args


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "migrate",
        help="apply database migrations",
        description="Bring the registry database (database.url, default SQLite under the "
        "data directory) to the latest schema, or to --revision.",
    )
    add_config_arguments(parser)
    parser.add_argument("--revision", default="head", help="target revision (default: head)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from registry.config import ConfigError
    from registry.db import upgrade
    from registry.log_redaction import redact

    try:
        config = config_from_args(args)
    except ConfigError as exc:
        return config_failure(args, exc)
    try:
        upgrade(config.database_url, args.revision)
    except (SQLAlchemyError, OSError) as exc:
        raise CommandError(f"cannot migrate {redact(config.database_url)}: {exc}") from None
    print(f"database {redact(config.database_url)} is at revision {args.revision}")
    return 0
