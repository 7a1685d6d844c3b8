"""`berth pull [--plain-http] [--platform P] [--user U:P] [--root DIR] REF`."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from berth.cli import USAGE_STATUS, CommandError
from blobstore import BlobStoreError
from puller import ImageStore, PullerError, UnpackLimits, default_root
from registry_client.errors import ClientError

if TYPE_CHECKING:
    from berth.commands._progress import Display, Kind

T = TypeVar("T")


def add_root_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="state directory (default: /var/lib/berth as root, $XDG_DATA_HOME/berth otherwise)",
    )


def open_store(args: argparse.Namespace) -> ImageStore:
    limits = unpack_limits(args) if hasattr(args, "max_expansion") else None
    try:
        return ImageStore(args.root or default_root(), limits=limits)
    except OSError as exc:
        raise CommandError(f"cannot open state directory: {exc}") from exc


_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def byte_size(text: str) -> int:
    """A byte count, plain or with a binary suffix as docker writes them (512m, 1g)."""
    match = re.fullmatch(r"(\d+)([kmgt]?)i?b?", text.strip().lower())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (e.g. 1073741824, 512m, 1g)")
    return int(match[1]) * _UNITS[match[2]]


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value == 0 or 1 <= value < float("inf")):
        raise argparse.ArgumentTypeError(f"{text!r} is not a ratio of at least 1 (or 0: off)")
    return value


def add_unpack_limits(parser: argparse.ArgumentParser) -> None:
    """The decompression-bomb guards of `pull`, shared by the commands that may pull."""
    defaults = UnpackLimits()
    parser.add_argument(
        "--max-layer-size",
        type=byte_size,
        default=defaults.max_size,
        metavar="SIZE",
        help="refuse layers that unpack to more than this (default 64g)",
    )
    parser.add_argument(
        "--max-expansion",
        type=_ratio,
        default=defaults.max_expansion,
        metavar="RATIO",
        help="refuse layers that inflate more than RATIO times the compressed bytes read "
        "(past --expansion-floor; default 100, 0 turns it off)",
    )
    parser.add_argument(
        "--expansion-floor",
        type=byte_size,
        default=defaults.expansion_floor,
        metavar="SIZE",
        help="uncompressed bytes a layer may unpack before --max-expansion applies (default 1g)",
    )


def unpack_limits(args: argparse.Namespace) -> UnpackLimits:
    return UnpackLimits(
        max_size=args.max_layer_size,
        max_expansion=args.max_expansion,
        expansion_floor=args.expansion_floor,
    )


def add_registry_options(parser: argparse.ArgumentParser) -> None:
    """--plain-http and --user, of the commands that talk to a registry."""
    parser.add_argument(
        "--plain-http",
        action="store_true",
        help="use HTTP, not HTTPS (default for localhost and 127.0.0.0/8)",
    )
    parser.add_argument("--user", "-u", help="USER:PASSWORD (default: ~/.docker/config.json)")


def user_credentials(args: argparse.Namespace) -> tuple[str, str] | None:
    """The --user credentials (None: look in the docker config when the registry asks)."""
    from registry_client.credentials import parse_user  # base64 and json: not for `run`

    try:
        return parse_user(args.user) if args.user else None
    except ValueError as exc:
        raise CommandError(f"--user: {exc}", status=USAGE_STATUS) from None


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("pull", help="pull an image from a registry")
    parser.add_argument("reference", metavar="REF", help="[registry/]name[:tag][@digest]")
    add_registry_options(parser)
    parser.add_argument("--platform", help="os/arch[/variant] to pick from an index")
    parser.add_argument(
        "--all-platforms",
        action="store_true",
        help="of an index, store every platform's content too (to push the whole index)",
    )
    add_unpack_limits(parser)
    add_root_option(parser)
    parser.set_defaults(handler=_pull)


def with_progress(kind: Kind, work: Callable[[Display], Awaitable[T]]) -> tuple[T, Display]:
    """Run `work` under a progress display on stdout; its failures become one line."""
    import asyncio

    from berth.commands._progress import open_display

    display = open_display(sys.stdout, kind)

    async def main() -> T:
        return await work(display)

    try:
        return asyncio.run(main()), display
    except (PullerError, ClientError, BlobStoreError) as exc:
        raise CommandError(str(exc)) from exc
    finally:
        display.finish()


def _pull(args: argparse.Namespace) -> int:
    credentials = user_credentials(args)
    store = open_store(args)
    record, display = with_progress(
        "pull",
        lambda display: store.pull(
            args.reference,
            platform=args.platform,
            all_platforms=args.all_platforms,
            plain_http=args.plain_http,
            credentials=credentials,
            progress=display,
        ),
    )
    print(f"Digest: {record.manifest_digest}")
    if display.changed:
        print(f"Status: Downloaded newer image for {record.reference}")
    else:
        print(f"Status: Image is up to date for {record.reference}")
    print(record.reference)
    return 0
