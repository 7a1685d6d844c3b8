"""`berth logs [-f] [--tail N] [-t] ID`: a detached container's output, stdout to stdout and
stderr to stderr as docker's does, from the log its monitor writes."""

from __future__ import annotations

import argparse
import sys

from berth.cli import CommandError
from berth.commands._lookup import named_container
from runtime import finished, logfile


def _tail(value: str) -> int | None:
    if value == "all":
        return None
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid --tail {value!r}: a number or all") from None
    return None if count < 0 else count


def _logs(args: argparse.Namespace) -> int:
    container = named_container(args)
    if not container.log.exists():
        raise CommandError(f"container {args.id} has no log: only `run -d` keeps one")
    if args.follow:
        entries = logfile.follow(container.log, lambda: finished(container.state()), tail=args.tail)
    else:
        entries = logfile.read(container.log, tail=args.tail)
    outputs = {"stdout": sys.stdout.buffer, "stderr": sys.stderr.buffer}
    for entry in entries:
        out = outputs.get(entry.stream, sys.stdout.buffer)
        if args.timestamps:
            out.write(entry.time.encode() + b" ")
        out.write(entry.data)
        out.flush()
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("logs", help="show a detached container's output")
    parser.add_argument("-f", "--follow", action="store_true", help="follow until it exits")
    parser.add_argument(
        "-n", "--tail", type=_tail, default=None, metavar="N", help="only the last N lines"
    )
    parser.add_argument("-t", "--timestamps", action="store_true", help="show timestamps")
    parser.add_argument("--root", help="state directory (default: /var/lib/berth)")
    parser.add_argument("id", metavar="ID")
    parser.set_defaults(handler=_logs)
