"""`berth push [--plain-http] [--user U:P] [--root DIR] NAME[:TAG]`: a local image to a registry."""

from __future__ import annotations

import argparse

from berth.cli import CommandError
from berth.commands.pull import (
    add_registry_options,
    add_root_option,
    open_store,
    user_credentials,
    with_progress,
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("push", help="push a local image to a registry")
    parser.add_argument("reference", metavar="NAME[:TAG]", help="a local image's name")
    add_registry_options(parser)
    add_root_option(parser)
    parser.set_defaults(handler=_push)


def _push(args: argparse.Namespace) -> int:
    credentials = user_credentials(args)
    from registry_client.reference import parse_reference

    store = open_store(args)
    record = store.find(args.reference)
    if record is None:
        raise CommandError(
            f"An image does not exist locally with the tag: {parse_reference(args.reference)}"
        )
    target = parse_reference(record.reference)
    print(f"The push refers to repository [{target.name}]", flush=True)
    result, _ = with_progress(
        "push",
        lambda display: store.push(
            record.reference, plain_http=args.plain_http, credentials=credentials, progress=display
        ),
    )
    if not result.whole_index:
        print(
            f"the index {record.index_digest} is not stored whole (pulled for one platform): "
            "pushed that platform's manifest only"
        )
    name = target.tag or str(result.digest)
    print(f"{name}: digest: {result.digest} size: {result.size}")
    return 0
