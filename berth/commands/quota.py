"""`berth quota`: storage usage of each repository and namespace that has a quota."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import TYPE_CHECKING

from berth.cli import CommandError
from berth.commands.serve import add_config_arguments, config_failure, config_from_args

if TYPE_CHECKING:
    from registry.config import Config
    from registry.quota import ScopeUsage


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "quota",
        help="show storage usage against quotas",
        description="For every repository and namespace a `quotas:` rule limits, the bytes "
        "it uses (each blob and manifest counted once) against its limit.",
    )
    add_config_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from registry.config import ConfigError

    try:
        config = config_from_args(args)
    except ConfigError as exc:
        return config_failure(args, exc)
    if not config.quotas:
        print(json.dumps({"scopes": []}) if args.json else "no quotas configured (quotas:)")
        return 0
    rows = asyncio.run(_report(config))
    if args.json:
        scopes = [
            {"scope": r.scope.kind, "name": r.scope.name, "limit": r.limit, "usage": r.used}
            for r in rows
        ]
        print(json.dumps({"scopes": scopes}, indent=2))
        return 0
    _print_table(rows)
    return 0


async def _report(config: Config) -> list[ScopeUsage]:
    from sqlalchemy.exc import SQLAlchemyError

    from registry.db import Database
    from registry.log_redaction import redact
    from registry.quota import Quotas

    db = Database(config.database_url)
    try:
        async with db.read() as conn:
            return await Quotas(config.quotas).report(conn)
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        raise CommandError(
            f"cannot read {redact(config.database_url)}: {reason} (run berth migrate)"
        ) from None
    finally:
        await db.dispose()


def _print_table(rows: list[ScopeUsage]) -> None:
    from registry.quota import format_size

    table = [("SCOPE", "NAME", "USED", "LIMIT", "USE%")]
    for r in rows:
        share = f"{100 * r.used / r.limit:.1f}%" + (" OVER" if r.used > r.limit else "")
        table.append((r.scope.kind, r.scope.name, format_size(r.used), format_size(r.limit), share))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
