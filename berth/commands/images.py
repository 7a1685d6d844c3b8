"""`berth images`, `berth tag SOURCE TARGET`, `berth rmi REF`, `berth prune`: the local image
store."""

from __future__ import annotations

import argparse
import sys

from berth.cli import CommandError
from berth.commands.pull import add_root_option, open_store
from blobstore import BlobStoreError
from puller import PullerError
from registry_client.errors import ClientError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    images = subparsers.add_parser("images", help="list local images")
    images.add_argument("--no-trunc", action="store_true", help="show full digests")
    add_root_option(images)
    images.set_defaults(handler=_images)
    tag = subparsers.add_parser(
        "tag", help="give a local image another name (TARGET refers to SOURCE)"
    )
    tag.add_argument("source", metavar="SOURCE", help="a local image: name[:tag] or name@digest")
    tag.add_argument("target", metavar="TARGET", help="the new name[:tag]")
    add_root_option(tag)
    tag.set_defaults(handler=_tag)
    rmi = subparsers.add_parser("rmi", help="remove local images (data stays until prune)")
    rmi.add_argument("references", nargs="+", metavar="REF")
    add_root_option(rmi)
    rmi.set_defaults(handler=_rmi)
    prune = subparsers.add_parser("prune", help="delete content and snapshots no image uses")
    add_root_option(prune)
    prune.set_defaults(handler=_prune)


def _images(args: argparse.Namespace) -> int:
    rows = [("REFERENCE", "DIGEST", "SIZE", "CREATED")]
    for record in open_store(args).images():
        digest = str(record.manifest_digest)
        rows.append(
            (
                record.reference,
                digest if args.no_trunc else digest[:19],
                human_size(record.size),
                record.created.replace("T", " ").rstrip("Z"),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print(
            "   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return 0


def _tag(args: argparse.Namespace) -> int:
    try:
        open_store(args).tag(args.source, args.target)
    except (PullerError, ClientError) as exc:
        raise CommandError(str(exc)) from exc
    return 0


def _rmi(args: argparse.Namespace) -> int:
    store = open_store(args)
    failed = False
    for reference in args.references:
        try:
            record = store.remove(reference)
        except (PullerError, ClientError) as exc:
            print(f"berth rmi: {exc}", file=sys.stderr)
            failed = True
            continue
        print(f"Untagged: {record.reference}")
    return 1 if failed else 0


def _prune(args: argparse.Namespace) -> int:
    import asyncio

    try:
        report = asyncio.run(open_store(args).prune())
    except (PullerError, ClientError, BlobStoreError, OSError) as exc:
        raise CommandError(str(exc)) from exc
    print(
        f"Deleted {report.blobs_deleted} blobs ({human_size(report.bytes_freed)}) and "
        f"{report.snapshots_deleted} snapshots"
    )
    return 0


def human_size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.3g}{unit}"
        n /= 1000
    return f"{n:.3g}TB"
