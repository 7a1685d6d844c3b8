"""`berth exec [-d] [-i] [-t] [-e K=V] [-u USER[:GROUP]] [-w DIR] CONTAINER CMD [ARG...]`:
run a command in a running container, as docker exec (runtime.exec_in). The exit status is
the command's; 126/127 when it cannot be executed or is not found; 125 when Berth fails."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from berth.cli import CommandError

BERTH_FAILED = 125


def _exec(args: argparse.Namespace) -> int:
    from puller import default_root
    from runtime import ContainerNotFound, ContainerStore, StartError, UserError
    from runtime.exec_in import ExecOptions, NotRunning, exec_in

    if not args.cmd:
        raise CommandError("exec needs a command to run in the container", status=2)
    if os.geteuid() != 0:
        raise CommandError("berth exec needs root (it joins the container's namespaces)")
    if args.workdir is not None and not args.workdir.startswith("/"):
        raise CommandError(f"the working directory {args.workdir!r} must be an absolute path")
    if args.tty and args.interactive and not args.detach and not os.isatty(0):
        raise CommandError("the input device is not a TTY", status=1)
    store = ContainerStore(Path(args.root) if args.root else default_root())
    try:
        container = store.get(args.container)
    except ContainerNotFound:
        raise CommandError(f"no such container: {args.container}", status=1) from None
    options = ExecOptions(
        args=tuple(args.cmd),
        env=tuple(args.env),
        user=args.user,
        workdir=args.workdir,
        tty=args.tty,
        interactive=args.interactive,
        detach=args.detach,
    )
    try:
        return exec_in(container, options, os.environ)
    except NotRunning as exc:
        raise CommandError(str(exc), status=1) from exc
    except UserError as exc:
        print(f"berth exec: {exc}", file=sys.stderr)
        return 126
    except StartError as exc:
        print(f"berth exec: {exc}", file=sys.stderr)
        return exc.code


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("exec", help="run a command in a running container")
    add = parser.add_argument
    add("-d", "--detach", action="store_true", help="run the command in the background")
    add("-i", "--interactive", action="store_true", help="keep stdin open")
    add("-t", "--tty", action="store_true", help="allocate a pseudo-terminal")
    add("-e", "--env", action="append", default=[], metavar="K=V", help="set an env variable")
    add("-u", "--user", metavar="USER[:GROUP]", help="user name or uid, optional group")
    add("-w", "--workdir", metavar="DIR", help="working directory inside the container")
    add("--root", help="state directory (default: /var/lib/berth)")
    add("container", metavar="CONTAINER")
    add("cmd", nargs=argparse.REMAINDER, metavar="CMD")
    parser.set_defaults(handler=_exec, failure_status=BERTH_FAILED)
