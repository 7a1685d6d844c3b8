"""`berth login [-u USER] [-p PASS | --password-stdin] [SERVER]` and `berth logout [SERVER]`,
as docker's: the credentials are checked against the registry (`GET /v2/` through its auth
challenge), then kept in the Docker config (`$DOCKER_CONFIG/config.json`, else
~/.docker/config.json) where docker, skopeo, podman and Berth's puller find them."""

from __future__ import annotations

import argparse
import sys

from berth.cli import CommandError

USAGE = 2


def _prompt_credentials(args: argparse.Namespace) -> tuple[str, str]:
    import getpass

    if args.password_stdin:
        if args.password is not None:
            message = "--password and --password-stdin are mutually exclusive"
            raise CommandError(message, status=USAGE)
        if not args.username:
            raise CommandError("Must provide --username with --password-stdin", status=USAGE)
        password = sys.stdin.read().rstrip("\r\n")
        return args.username, password
    if args.password is not None:
        print("WARNING! Using --password via the CLI is insecure. Use --password-stdin.",
              file=sys.stderr)  # fmt: skip
    username, password = args.username, args.password
    if (not username or password is None) and not sys.stdin.isatty():
        raise CommandError("Cannot perform an interactive login from a non TTY device")
    if not username:
        username = input("Username: ").strip()
    if password is None:
        password = getpass.getpass("Password: ")
    return username, password


def _login(args: argparse.Namespace) -> int:
    import asyncio

    from registry_client.errors import ClientError
    from registry_client.login import check_credentials, server_key, store_credentials

    try:
        key = server_key(args.server)
    except ClientError as exc:
        raise CommandError(str(exc), status=USAGE) from exc
    username, password = _prompt_credentials(args)
    if not username:
        raise CommandError("Username: a username is required", status=USAGE)
    if not password:
        raise CommandError("Error: Password Required", status=USAGE)
    try:
        asyncio.run(check_credentials(key, username, password))
        path = store_credentials(key, username, password)
    except ClientError as exc:
        raise CommandError(str(exc)) from exc
    print(f"WARNING! Your credentials are stored unencrypted in '{path}'.", file=sys.stderr)
    print("Login Succeeded")
    return 0


def _logout(args: argparse.Namespace) -> int:
    from registry_client.errors import ClientError
    from registry_client.login import erase_credentials, server_key

    try:
        key = server_key(args.server)
        if not erase_credentials(key):
            print(f"Not logged in to {key}")
            return 0
    except ClientError as exc:
        raise CommandError(str(exc)) from exc
    print(f"Removing login credentials for {key}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    login = subparsers.add_parser("login", help="log in to a registry")
    login.add_argument("-u", "--username", help="user name")
    login.add_argument("-p", "--password", help="password (insecure: see --password-stdin)")
    login.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    login.add_argument("server", nargs="?", metavar="SERVER", help="default: Docker Hub")
    login.set_defaults(handler=_login)
    logout = subparsers.add_parser("logout", help="log out from a registry")
    logout.add_argument("server", nargs="?", metavar="SERVER", help="default: Docker Hub")
    logout.set_defaults(handler=_logout)
