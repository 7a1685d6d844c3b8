"""`berth bundle [OPTIONS] REF DIR [CMD...]`: write an OCI runtime bundle for any runtime.

DIR gets config.json, and the image's overlay mounted at DIR/rootfs (writes land in
DIR/upper). Run it with `runc run -b DIR ID`; `umount DIR/rootfs` when done.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from berth.cli import CommandError
from berth.commands.run import add_run_options, image_for, run_options
from runtime import OptionError, UserError, write_bundle


def _bundle(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        raise CommandError("berth bundle needs root to mount the overlay root filesystem")
    options = run_options(args)
    if options.network not in ("none", "host"):
        raise CommandError("bridge networks and -p need `berth run`: a bundle has no network")
    _, _, config, layers = image_for(args)
    hostname = options.hostname or os.urandom(6).hex()
    try:
        rootfs = write_bundle(
            args.directory, config, layers, options, hostname=hostname, host_env=os.environ
        )
    except (OptionError, UserError, OSError) as exc:
        raise CommandError(str(exc)) from exc
    print(f"bundle written to {args.directory}; root filesystem mounted at {rootfs}")
    print(f"run it with: runc run -b {args.directory} ID; then: umount {rootfs}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("bundle", help="write an OCI runtime bundle for an image")
    add_run_options(parser)
    parser.add_argument("image", metavar="REF")
    parser.add_argument("directory", type=Path, metavar="DIR")
    parser.add_argument("cmd", nargs=argparse.REMAINDER, metavar="CMD")
    parser.set_defaults(handler=_bundle)
