"""The container a one-container command (`logs`, `port`) names: by id, name or unique id
prefix under --root, or a one-line "no such container"."""

from __future__ import annotations

import argparse
from pathlib import Path

from berth.cli import CommandError
from runtime import Container, ContainerNotFound, ContainerStore


def named_container(args: argparse.Namespace) -> Container:
    from puller import default_root

    store = ContainerStore(Path(args.root) if args.root else default_root())
    try:
        return store.get(args.id)
    except ContainerNotFound:
        raise CommandError(f"no such container: {args.id}") from None
