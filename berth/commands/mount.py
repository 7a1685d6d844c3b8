"""`berth mount REF DIR` (the image's root filesystem, read-only) and `berth umount DIR`."""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from berth.cli import CommandError
from berth.commands.pull import add_root_option, open_store
from puller import PullerError
from puller.overlay import readonly_overlay_options


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    mount = subparsers.add_parser("mount", help="mount an image's root filesystem read-only")
    mount.add_argument("reference", metavar="REF")
    mount.add_argument("target", metavar="DIR", type=Path)
    add_root_option(mount)
    mount.set_defaults(handler=_mount)
    umount = subparsers.add_parser("umount", help="unmount what `berth mount` mounted")
    umount.add_argument("target", metavar="DIR", type=Path)
    add_root_option(umount)
    umount.set_defaults(handler=_umount)


def _mount(args: argparse.Namespace) -> int:
    store = open_store(args)
    try:
        record = store.find(args.reference)
        if record is None:
            raise CommandError(f"no local image {args.reference} (berth pull it first)")
        layers = store.layer_dirs(record)
        missing = [d for d in layers if not d.is_dir()]
        if missing:
            raise CommandError(f"snapshot {missing[0]} is missing; pull {record.reference} again")
        base = store.snapshots.root
        options = readonly_overlay_options(layers, store.snapshots.empty_dir(), base)
    except PullerError as exc:
        raise CommandError(str(exc)) from exc
    if not args.target.is_dir():
        raise CommandError(f"{args.target} is not a directory")
    _run(["mount", "-t", "overlay", "berth", "-o", options, str(args.target.resolve())], base)
    print(f"{record.reference} mounted read-only at {args.target}")
    return 0


def _umount(args: argparse.Namespace) -> int:
    _run(["umount", str(args.target)], None)
    return 0


def _run(argv: list[str], cwd: Path | None) -> None:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        message = " ".join(proc.stderr.split()) or f"exit status {proc.returncode}"
        raise CommandError(message)
