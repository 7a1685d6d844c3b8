"""`berth events`: webhook deliveries still waiting in the outbox, and why they fail."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import TYPE_CHECKING

from berth.cli import CommandError
from berth.commands.serve import add_config_arguments, config_from_args

if TYPE_CHECKING:
    from registry.webhooks import Undelivered


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "events",
        help="show pending and failed webhook deliveries",
        description="List webhook events not yet delivered to their endpoint "
        "(notifications.endpoints), oldest first per endpoint, with the last error of those "
        "whose delivery failed.",
    )
    add_config_arguments(parser)
    parser.add_argument("--failed", action="store_true", help="only deliveries that failed")
    parser.add_argument("--limit", type=int, default=100, metavar="N", help="at most N rows")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    config = config_from_args(args)
    configured = {e.name for e in config.notifications.endpoints}
    try:
        rows = asyncio.run(_undelivered(config.database_url, args.failed, args.limit))
    except (SQLAlchemyError, OSError) as exc:
        raise CommandError(f"cannot read {config.database_url}: {exc}") from None
    if args.json:
        for row in rows:
            print(json.dumps(_as_json(row, configured)))
        return 0
    if not rows:
        print("no failed deliveries" if args.failed else "no pending deliveries")
        return 0
    print(f"{'ENDPOINT':16} {'EVENT':36} {'ACTION':6} {'REPOSITORY/TARGET':50} TRIES  LAST ERROR")
    for row in rows:
        where = row.repository
        if row.target:  # a digest after @, a tag after :
            where += ("@" if ":" in row.target else ":") + row.target
        columns = f"{row.endpoint:16} {row.event_id:36} {row.action:6} {where:50}"
        note = "" if row.endpoint in configured else "(endpoint no longer configured) "
        print(f"{columns} {row.attempts:5}  {note}{row.last_error or '-'}")
    return 0


async def _undelivered(url: str, failed_only: bool, limit: int) -> list[Undelivered]:
    from registry.db import Database
    from registry.webhooks import undelivered

    db = Database(url)
    try:
        return await undelivered(db, failed_only=failed_only, limit=limit)
    finally:
        await db.dispose()


def _as_json(row: Undelivered, configured: set[str]) -> dict[str, object]:
    return {
        "endpoint": row.endpoint,
        "event_id": row.event_id,
        "action": row.action,
        "repository": row.repository,
        "target": row.target,
        "created_at": row.created_at.isoformat(),
        "attempts": row.attempts,
        "last_error": row.last_error,
        "state": "failed" if row.failed else "pending",
        "configured": row.endpoint in configured,
    }
