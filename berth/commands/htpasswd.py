"""`berth htpasswd add [--file F] USER`: create or update a bcrypt entry in an htpasswd file.

The password comes from a prompt (asked twice) or, with --password-stdin, from the first
line of standard input. The file is replaced atomically; a new one is created mode 0600.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from berth.cli import CommandError


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        password = password.removesuffix("\r")
    else:
        if not sys.stdin.isatty():
            raise CommandError("no terminal to ask for the password: use --password-stdin")
        password = getpass.getpass(f"Password for {args.user}: ")
        if getpass.getpass("Repeat password: ") != password:
            raise CommandError("the passwords do not match")
    if not password:
        raise CommandError("empty password")
    return password


def add(args: argparse.Namespace) -> int:
    # Imported here: `berth serve` must configure prometheus-client before the registry loads.
    from registry.auth.htpasswd import set_password, validate_username

    try:
        validate_username(args.user)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    password = _read_password(args)
    path = Path(args.file)
    try:
        created = set_password(path, args.user, password, cost=args.cost)
    except (OSError, ValueError) as exc:
        raise CommandError(str(exc)) from exc
    print(f"{'Added' if created else 'Updated'} user {args.user} in {path}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("htpasswd", help="manage users in an htpasswd file")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add_parser = actions.add_parser("add", help="create or update a user (bcrypt)")
    add_parser.add_argument("user", metavar="USER")
    add_parser.add_argument(
        "--file", "-f", default="htpasswd", help="the htpasswd file (default: ./htpasswd)"
    )
    add_parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )
    add_parser.add_argument(
        "--cost",
        type=int,
        default=10,
        choices=range(4, 32),
        metavar="4-31",
        help="bcrypt cost (default: 10)",
    )
    add_parser.set_defaults(handler=add)
