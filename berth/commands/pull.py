"""`berth pull [--plain-http] [--platform P] [--user U:P] [--root DIR] REF`."""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import TextIO

from berth.cli import USAGE_STATUS, CommandError
from blobstore import BlobStoreError
from puller import ImageStore, Phase, ProgressEvent, PullerError, UnpackLimits, default_root
from registry_client.credentials import parse_user
from registry_client.errors import ClientError


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


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("pull", help="pull an image from a registry")
    parser.add_argument("reference", metavar="REF", help="[registry/]name[:tag][@digest]")
    parser.add_argument(
        "--plain-http",
        action="store_true",
        help="use HTTP, not HTTPS (default for localhost and 127.0.0.0/8)",
    )
    parser.add_argument("--platform", help="os/arch[/variant] to pick from an index")
    parser.add_argument("--user", "-u", help="USER:PASSWORD (default: ~/.docker/config.json)")
    add_unpack_limits(parser)
    add_root_option(parser)
    parser.set_defaults(handler=_pull)


def _pull(args: argparse.Namespace) -> int:
    try:
        credentials = parse_user(args.user) if args.user else None
    except ValueError as exc:
        raise CommandError(f"--user: {exc}", status=USAGE_STATUS) from None
    import asyncio

    store = open_store(args)
    display = ProgressDisplay(sys.stdout)
    try:
        record = asyncio.run(
            store.pull(
                args.reference,
                platform=args.platform,
                plain_http=args.plain_http,
                credentials=credentials,
                progress=display,
            )
        )
    except (PullerError, ClientError, BlobStoreError) as exc:
        raise CommandError(str(exc)) from exc
    display.finish()
    print(f"Digest: {record.manifest_digest}")
    if display.changed:
        print(f"Status: Downloaded newer image for {record.reference}")
    else:
        print(f"Status: Image is up to date for {record.reference}")
    print(record.reference)
    return 0


class ProgressDisplay:
    """Per-layer progress: redrawn lines on a terminal, plain lines (one per state change,
    and at most one a second per downloading layer) otherwise."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._tty = out.isatty()
        self._order: list[str] = []
        self._lines: dict[str, str] = {}
        self._started: dict[str, float] = {}
        self._last_plain: dict[str, float] = {}
        self._drawn = 0
        self.changed = False  # anything downloaded or unpacked

    def __call__(self, event: ProgressEvent) -> None:
        short = event.digest.hex[:12]
        if event.phase is Phase.DOWNLOADED or (event.phase is Phase.UNPACKED and not event.detail):
            self.changed = True
        if event.phase is Phase.RESOLVED:
            self._emit(short, f"resolved {event.digest} ({event.total} layers)", force=True)
            return
        if event.phase is Phase.DOWNLOADING:
            started = self._started.setdefault(short, time.monotonic())
            elapsed = max(time.monotonic() - started, 0.1)
            text = (
                f"downloading {_size(event.done)}/{_size(event.total)} "
                f"{_size(int(event.done / elapsed))}/s"
            )
            self._emit(short, text, force=False)
            return
        text = event.phase.value
        if event.phase is Phase.DOWNLOADED:
            elapsed = time.monotonic() - self._started.get(short, time.monotonic())
            text = f"downloaded {_size(event.total)} in {elapsed:.1f}s"
        elif event.phase is Phase.RETRYING:
            text = f"retrying at {_size(event.done)}: {event.detail}"
        elif event.phase is Phase.UNPACKED and event.detail:
            text = "snapshot exists"
        self._emit(short, text, force=True)

    def _emit(self, key: str, text: str, *, force: bool) -> None:
        if not self._tty:
            now = time.monotonic()
            if force or now - self._last_plain.get(key, 0.0) >= 1.0:
                self._last_plain[key] = now
                print(f"{key}: {text}", file=self._out, flush=True)
            return
        if key not in self._lines:
            self._order.append(key)
        self._lines[key] = text
        self._redraw()

    def _redraw(self) -> None:
        if self._drawn:
            self._out.write(f"\x1b[{self._drawn}F")
        for key in self._order:
            self._out.write(f"\x1b[2K{key}: {self._lines[key]}\n")
        self._drawn = len(self._order)
        self._out.flush()

    def finish(self) -> None:
        self._out.flush()


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1000
    return f"{n:.1f}GB"
