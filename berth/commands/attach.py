"""`berth attach CONTAINER`: the stdio of a running container (its terminal, with `-t`), as
docker attach; Ctrl-P Ctrl-Q detaches and it runs on. Also what `run -t` and `start -a`
do once the container runs under its monitor. The exit status is the container's."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from berth.cli import CommandError
from runtime import Container, ContainerNotFound, ContainerStore, is_running
from runtime.terminal import DETACH_KEYS, parse_detach_keys

if TYPE_CHECKING:
    import socket

BERTH_FAILED = 125


def _root(args: argparse.Namespace) -> Path:
    from puller import default_root

    return Path(args.root) if args.root else default_root()


def check_input_terminal(tty: bool, interactive: bool) -> None:
    """docker's refusal of `-it` when stdin is not a terminal."""
    if tty and interactive and not os.isatty(0):
        raise CommandError("the input device is not a TTY", status=1)


def detach_keys(args: argparse.Namespace) -> bytes:
    """--detach-keys as bytes (docker's default: ctrl-p,ctrl-q); a bad value is a usage error."""
    text = getattr(args, "detach_keys", None)
    try:
        return parse_detach_keys(text) if text else DETACH_KEYS
    except ValueError as exc:
        raise CommandError(str(exc), status=2) from exc


def _relay_until_exit(
    container: Container, sock: socket.socket, *, stdin: bool, close: bool, keys: bytes
) -> int:
    from runtime.attach import AttachError, relay

    if not container.state().tty:
        _proxy_signals(container)
    with sock:
        try:
            code = relay(
                sock, tty=container.state().tty, stdin=stdin, close_stdin=close, detach_keys=keys
            )
        except AttachError as exc:
            raise CommandError(str(exc), status=BERTH_FAILED) from exc
    return 0 if code is None else code


def _proxy_signals(container: Container) -> None:
    """docker's --sig-proxy (on by default) without a terminal: SIGINT, SIGTERM and friends
    go to the container. With one, Ctrl-C is a key the container's terminal turns into it."""
    import contextlib
    import signal
    from types import FrameType

    from runtime import kill

    def forward(signum: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(OSError):
            kill(container, signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                signal.SIGUSR1, signal.SIGUSR2):  # fmt: skip
        signal.signal(sig, forward)


def start_attached(
    store: ContainerStore,
    container: Container,
    *,
    interactive: bool,
    auto_remove: bool = False,
    keys: bytes = DETACH_KEYS,
    command: str = "run",
) -> int:
    """Start `container` under its monitor, attached from the first byte of its output
    (`run -t`, `start -a`); returns its exit code, or 0 when the user detaches."""
    from runtime import StartError, detach
    from runtime.terminal import window_size

    state = container.state()
    size = (window_size(0) or window_size(1)) if state.tty else None
    try:
        sock = detach(store, container, auto_remove=auto_remove, attached=True, console_size=size)
    except StartError as exc:
        print(f"berth {command}: {exc}", file=sys.stderr)
        return exc.code
    assert sock is not None
    stdin = interactive and state.open_stdin
    return _relay_until_exit(container, sock, stdin=stdin, close=stdin, keys=keys)


def start_and_attach(args: argparse.Namespace) -> int:
    """`start -a [-i] ID`: attached before the container starts; its exit code."""
    if len(args.ids) != 1:
        raise CommandError("you cannot start and attach multiple containers at once")
    store = ContainerStore(_root(args))
    try:
        container = store.get(args.ids[0])
    except ContainerNotFound:
        raise CommandError(f"no such container: {args.ids[0]}") from None
    state = container.state()
    check_input_terminal(state.tty, args.interactive and state.open_stdin)
    keys = detach_keys(args)
    if is_running(state):
        return _attach_running(container, stdin=args.interactive and state.open_stdin, keys=keys)
    return start_attached(
        store, container, interactive=args.interactive, keys=keys, command="start"
    )


def _attach_running(container: Container, *, stdin: bool, keys: bytes) -> int:
    from runtime.attach import AttachError, connect

    try:
        sock = connect(container.path)
    except AttachError as exc:
        raise CommandError(str(exc)) from exc
    return _relay_until_exit(container, sock, stdin=stdin, close=False, keys=keys)


def _attach(args: argparse.Namespace) -> int:
    store = ContainerStore(_root(args))
    try:
        container = store.get(args.container)
    except ContainerNotFound:
        raise CommandError(f"no such container: {args.container}") from None
    state = container.state()
    if not is_running(state):
        raise CommandError("you cannot attach to a stopped container, start it first")
    stdin = state.open_stdin and not args.no_stdin
    check_input_terminal(state.tty, stdin)
    return _attach_running(container, stdin=stdin, keys=detach_keys(args))


def add_detach_keys(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--detach-keys", metavar="KEYS", help="keys that detach (default: ctrl-p,ctrl-q)"
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "attach", help="attach to a running container's input and output"
    )
    parser.add_argument("--no-stdin", action="store_true", help="do not attach stdin")
    add_detach_keys(parser)
    parser.add_argument("--root", help="state directory (default: /var/lib/berth)")
    parser.add_argument("container", metavar="CONTAINER")
    parser.set_defaults(handler=_attach)
