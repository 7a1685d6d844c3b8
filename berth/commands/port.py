"""`berth port ID [PORT[/PROTO]]`: a running container's published ports, as `docker port`
prints them (`80/tcp -> 127.0.0.1:8080`; with PORT, only the host addresses)."""

from __future__ import annotations

import argparse

from berth.cli import CommandError
from berth.commands._lookup import named_container
from runtime import is_running


def _port(args: argparse.Namespace) -> int:
    from runtime.network.settings import published

    container = named_container(args)
    mappings = published(container) if is_running(container.state()) else []
    wanted = args.port if args.port is None or "/" in args.port else f"{args.port}/tcp"
    lines = []
    for m in mappings:
        if wanted is None:
            lines.append(f"{m.key} -> {m.host_address}")
        elif m.key == wanted:
            lines.append(m.host_address)
    if wanted is not None and not lines:
        raise CommandError(f"no public port '{wanted}' published for {args.id}")
    if lines:
        print("\n".join(lines))
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("port", help="list a container's published ports")
    parser.add_argument("--root", help="state directory (default: /var/lib/berth)")
    parser.add_argument("id", metavar="ID")
    parser.add_argument("port", nargs="?", metavar="PORT[/PROTO]")
    parser.set_defaults(handler=_port)
