"""`berth ps [-a]` lists containers; `berth rm [-f] ID...` removes stopped ones; `berth stop
[-t SECS] ID...` sends SIGTERM, then SIGKILL; `kill [-s SIG]`, `wait`, `start` and `restart`
as docker's. An ID is a container id, its name or a unique id prefix."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from berth.cli import CommandError
from berth.commands._table import print_table
from runtime import (
    Container,
    ContainerNotFound,
    ContainerState,
    ContainerStore,
    finished,
    is_running,
)


def _root(args: argparse.Namespace) -> Path:
    from puller import default_root

    return Path(args.root) if args.root else default_root()


def _ago(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} seconds ago"


def _status(state: ContainerState, now: float) -> str:
    if is_running(state):
        return f"Up {_ago(now - (state.started or state.created)).removesuffix(' ago')}"
    if state.exit_code is not None:
        return f"Exited ({state.exit_code}) {_ago(now - (state.finished or now))}"
    return "Dead" if state.status == "running" else "Created"  # its `berth run` was killed


def _ps(args: argparse.Namespace) -> int:
    now = time.time()
    rows = [("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "RUNTIME", "NAMES")]
    store = ContainerStore(_root(args))
    for state in store.list():
        if not args.all and not is_running(state):
            continue
        ports = ""
        if is_running(state):
            from runtime.network.settings import ports_column

            ports = ports_column(Container(store.dir / state.id))
        command = " ".join(state.command)
        command = command if len(command) <= 22 else command[:19] + "..."
        rows.append(
            (
                state.id[:12],
                state.image,
                f'"{command}"',
                _ago(now - state.created),
                _status(state, now),
                ports,
                state.runtime,
                state.name,
            )
        )
    print_table(rows, quiet=args.quiet)
    return 0


def _each(
    args: argparse.Namespace, action: Callable[[ContainerStore, Container], str | None]
) -> int:
    """Apply `action` to every container named; print what it returns or else the name, as
    docker does; one line on stderr for each failure."""
    store = ContainerStore(_root(args))
    failed = False
    for name in args.ids:
        try:
            said = action(store, store.get(name))
            print(name if said is None else said)
        except ContainerNotFound:
            print(f"berth {args.command}: no such container: {name}", file=sys.stderr)
            failed = True
        except (CommandError, OSError) as exc:
            print(f"berth {args.command}: {exc}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


def _rm(args: argparse.Namespace) -> int:
    from runtime import remove, stop  # the executor and its syscalls: not for `ps`

    def rm(store: ContainerStore, container: Container) -> None:
        if is_running(container.state()) and not args.force:
            raise CommandError(f"container {container.id[:12]} is running: stop it or use -f")
        stop(container, timeout=0)  # SIGKILL, as docker rm -f; waits for its monitor
        with contextlib.suppress(FileNotFoundError):  # a --rm container's monitor removed it
            remove(store, container, volumes=args.volumes)

    return _each(args, rm)


def _stop(args: argparse.Namespace) -> int:
    from runtime import stop

    return _each(args, lambda _store, container: stop(container, timeout=args.time))


def _kill(args: argparse.Namespace) -> int:
    from runtime import kill

    def send(_store: ContainerStore, container: Container) -> None:
        if not is_running(container.state()):
            raise CommandError(f"container {container.id[:12]} is not running")
        kill(container, args.signal)

    return _each(args, send)


def _start(args: argparse.Namespace) -> int:
    from runtime import StartError, detach, stop

    if getattr(args, "attach", False) or getattr(args, "interactive", False):
        from berth.commands.attach import start_and_attach

        return start_and_attach(args)

    def start(store: ContainerStore, container: Container) -> None:
        if args.command == "restart":
            stop(container, timeout=args.time)
        elif is_running(container.state()):
            return
        try:
            detach(store, container)
        except StartError as exc:
            raise CommandError(str(exc)) from exc

    return _each(args, start)


def _wait(args: argparse.Namespace) -> int:
    def wait(_store: ContainerStore, container: Container) -> str:
        while not finished(state := container.state()):
            time.sleep(0.1)
        return str(state.exit_code if state.exit_code is not None else -1)

    return _each(args, wait)


def _inspect(args: argparse.Namespace) -> int:
    import json

    from runtime.describe import describe

    store = ContainerStore(_root(args))
    found, failed = [], False
    for name in args.ids:
        try:
            found.append(describe(store.get(name)))
        except ContainerNotFound:
            print(f"berth inspect: no such container: {name}", file=sys.stderr)
            failed = True
    print(json.dumps(found, indent=4))
    return 1 if failed else 0


def _signal(value: str) -> int:
    if value.isdigit():
        return int(value)
    name = value.upper()
    try:
        return int(signal.Signals[name if name.startswith("SIG") else "SIG" + name])
    except KeyError:
        raise argparse.ArgumentTypeError(f"invalid signal: {value}") from None


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ps = subparsers.add_parser("ps", help="list containers")
    ps.add_argument("-a", "--all", action="store_true", help="include stopped containers")
    ps.add_argument("-q", "--quiet", action="store_true", help="only print ids")
    ps.add_argument("--root", help="state directory (default: /var/lib/berth)")
    ps.set_defaults(handler=_ps)
    rm = subparsers.add_parser("rm", help="remove containers")
    rm.add_argument("-f", "--force", action="store_true", help="kill a running container first")
    rm.add_argument("-v", "--volumes", action="store_true", help="remove anonymous volumes too")
    rm.add_argument("--root", help="state directory (default: /var/lib/berth)")
    rm.add_argument("ids", nargs="+", metavar="ID")
    rm.set_defaults(handler=_rm)
    stop = subparsers.add_parser("stop", help="stop running containers")
    stop.add_argument(
        "-t", "--time", type=int, default=10, metavar="SECS", help="seconds before SIGKILL"
    )
    stop.add_argument("--root", help="state directory (default: /var/lib/berth)")
    stop.add_argument("ids", nargs="+", metavar="ID")
    stop.set_defaults(handler=_stop)
    kill = subparsers.add_parser("kill", help="send a signal to running containers")
    kill.add_argument(
        "-s", "--signal", type=_signal, default=signal.SIGKILL, metavar="SIG",
        help="signal name or number (default: KILL)",
    )  # fmt: skip
    start = subparsers.add_parser("start", help="start stopped containers in the background")
    start.add_argument("-a", "--attach", action="store_true", help="attach stdout and stderr")
    start.add_argument("-i", "--interactive", action="store_true", help="attach stdin too")
    start.add_argument("--detach-keys", metavar="KEYS", help="default: ctrl-p,ctrl-q (with -a)")
    restart = subparsers.add_parser("restart", help="stop, then start containers")
    restart.add_argument(
        "-t", "--time", type=int, default=10, metavar="SECS", help="seconds before SIGKILL"
    )
    wait = subparsers.add_parser("wait", help="wait for containers to exit, print their codes")
    inspect = subparsers.add_parser("inspect", help="show containers as JSON, as docker does")
    for parser, handler in (
        (kill, _kill), (start, _start), (restart, _start), (wait, _wait), (inspect, _inspect)
    ):  # fmt: skip
        parser.add_argument("--root", help="state directory (default: /var/lib/berth)")
        parser.add_argument("ids", nargs="+", metavar="ID")
        parser.set_defaults(handler=handler)
