"""`berth gc`: one online garbage collection pass (docs/gc.md), safe while `berth serve` runs."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
from typing import TYPE_CHECKING

from berth.cli import CommandError
from berth.commands._retention import add_retention_argument, apply_retention
from berth.commands.images import human_size
from berth.commands.serve import EXIT_CONFIG, add_config_arguments, config_failure, config_from_args

if TYPE_CHECKING:
    from registry.config import Config
    from registry.gc import GCOptions, GCReport, Removal
    from registry.gc.history import GCRun
    from registry.gc.report import OnRemoval


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "gc",
        help="delete unreferenced blobs, links and (opt-in) untagged manifests",
        description="Run one garbage collection pass against the registry's database and "
        "storage, while it serves. Settings default to the config's gc section.",
    )
    add_config_arguments(parser)
    parser.add_argument("--dry-run", action="store_true", help="list what would go; change nothing")
    parser.add_argument(
        "--delete-untagged",
        action="store_true",
        help="also delete manifests no tag, index or live subject reaches (gc.deleteuntagged)",
    )
    parser.add_argument(
        "--grace",
        metavar="DURATION",
        help="keep what was uploaded, mounted or found by HEAD this recently "
        "(gc.grace, default 1h; 0s is allowed)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--history",
        action="store_true",
        help="list the last passes (on any replica, scheduled or not) instead of collecting",
    )
    add_retention_argument(parser)
    parser.set_defaults(handler=run)


def options(args: argparse.Namespace, config: Config) -> GCOptions:
    from registry.gc.schedule import options_from

    chosen = options_from(config)
    return dataclasses.replace(
        chosen,
        dry_run=args.dry_run,
        delete_untagged=chosen.delete_untagged or args.delete_untagged,
    )


def run(args: argparse.Namespace) -> int:
    from registry.config import ConfigError, GCConfig
    from registry.config_load import build

    try:
        config = config_from_args(args)
    except ConfigError as exc:
        return config_failure(args, exc)
    if args.grace is not None:
        try:
            grace = build(GCConfig, {"grace": args.grace}, "--grace").grace
        except ConfigError as exc:
            message = str(exc).replace("--grace.grace", "--grace")
            raise CommandError(message, status=EXIT_CONFIG) from None
        config = dataclasses.replace(config, gc=dataclasses.replace(config.gc, grace=grace))
    if args.history:
        _print_history(asyncio.run(_history(config)), as_json=args.json)
        return 0
    retention = apply_retention(config, dry_run=args.dry_run) if args.retention else None
    if retention is not None and not args.json:
        print("\n".join(retention.lines() or ["retention: no tag to delete"]))
    on_removal = None if args.json else _print_removal(args.dry_run)
    report = asyncio.run(_collect(config, options(args, config), on_removal))
    if args.json:
        shown = report.as_dict()
        if retention is not None:
            shown["retention"] = retention.as_json()
        print(json.dumps(shown, indent=2))
    else:
        print(_summary(report))
    return 0


async def _collect(config: Config, chosen: GCOptions, on_removal: OnRemoval | None) -> GCReport:
    from registry.blobstores import open_blobstore
    from registry.db import Database, upgrade
    from registry.gc import collect_garbage
    from registry.leases import LeaseBusy
    from registry.service.upload_locks import UploadLocks

    await asyncio.to_thread(upgrade, config.database_url)
    db = Database(config.database_url)
    try:
        async with open_blobstore(config) as store:
            return await collect_garbage(db, store, UploadLocks(db), chosen, on_removal)
    except LeaseBusy as exc:
        raise CommandError(f"another garbage collection is running ({exc})") from None
    finally:
        await db.dispose()


async def _history(config: Config) -> list[GCRun]:
    from registry.db import Database, upgrade
    from registry.gc.history import recent_runs

    await asyncio.to_thread(upgrade, config.database_url)
    db = Database(config.database_url)
    try:
        async with db.read() as conn:
            return await recent_runs(conn, limit=20)
    finally:
        await db.dispose()


def _print_history(runs: list[GCRun], *, as_json: bool) -> None:
    if as_json:
        shown = [
            {
                "started": r.started_at.isoformat(),
                "seconds": round(r.seconds, 3),
                "trigger": r.trigger,
                "removed": {
                    "manifests": r.manifests,
                    "links": r.links,
                    "blobs": r.blobs,
                    "uploads": r.uploads,
                    "ingests": r.ingests,
                },
                "bytes_freed": r.bytes_freed,
                "error": r.error,
            }
            for r in runs
        ]
        print(json.dumps({"runs": shown}, indent=2))
        return
    if not runs:
        print("no garbage collection pass has run yet")
        return
    table = [("STARTED", "TRIGGER", "SECONDS", "BLOBS", "FREED", "MANIFESTS", "RESULT")]
    for r in runs:
        started = r.started_at.strftime("%Y-%m-%d %H:%M:%S")
        result = f"failed: {r.error}" if r.error else "ok"
        freed = human_size(r.bytes_freed)
        table.append(
            (started, r.trigger, f"{r.seconds:.1f}", str(r.blobs), freed, str(r.manifests), result)
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    for row in table:
        print("   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1])


def _print_removal(dry_run: bool) -> OnRemoval:
    verb = "would remove" if dry_run else "removed"

    def show(removal: Removal) -> None:
        where = f" {removal.repository}" if removal.repository else ""
        size = f" ({human_size(removal.size)})" if removal.kind == "blob" else ""
        print(f"{verb} {removal.kind}{where} {removal.digest}{size}")

    return show


def _summary(report: GCReport) -> str:
    counts = (
        f"{report.manifests} manifest(s), {report.links} link(s), {report.blobs} blob(s) "
        f"({human_size(report.bytes_freed)}), {report.uploads} upload session(s), "
        f"{report.ingests} orphaned ingest(s)"
    )
    verb = "Would remove" if report.dry_run else "Removed"
    return f"{verb} {counts} in {report.seconds:.1f}s"
