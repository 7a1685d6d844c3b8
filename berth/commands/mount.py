"""`berth mount REF DIR` (the image's root filesystem: read-only, nodev, nosuid) and
`berth umount DIR`."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from berth.cli import CommandError
from berth.commands.pull import add_root_option, open_store


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    mount = subparsers.add_parser(
        "mount", help="mount an image's root filesystem read-only (nodev, nosuid)"
    )
    mount.add_argument("reference", metavar="REF")
    mount.add_argument("target", metavar="DIR", type=Path)
    add_root_option(mount)
    mount.set_defaults(handler=_mount)
    umount = subparsers.add_parser("umount", help="unmount what `berth mount` mounted")
    umount.add_argument("target", metavar="DIR", type=Path)
    add_root_option(umount)
    umount.set_defaults(handler=_umount)


def _mount(args: argparse.Namespace) -> int:
    from runtime import mount_image

    if os.geteuid() != 0:
        raise CommandError("berth mount needs root to mount an overlay")
    store = open_store(args)
    record = store.find(args.reference)
    if record is None:
        raise CommandError(f"no local image {args.reference} (berth pull it first)")
    layers = store.layer_dirs(record)
    missing = [d for d in layers if not d.is_dir()]
    if missing:
        raise CommandError(f"snapshot {missing[0]} is missing; pull {record.reference} again")
    if not args.target.is_dir():
        raise CommandError(f"{args.target} is not a directory")
    try:
        mount_image(
            layers, args.target.resolve(), empty=store.snapshots.empty_dir(), scratch=store.root
        )
    except ValueError as exc:
        raise CommandError(f"{record.reference}: {exc}") from None
    print(f"{record.reference} mounted read-only at {args.target}")
    return 0


def _umount(args: argparse.Namespace) -> int:
    from runtime import unmount

    unmount(args.target)
    return 0
