"""`berth ps [-a]` lists containers; `berth rm [-f] ID...` removes stopped ones."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from berth.cli import CommandError
from runtime import ContainerNotFound, ContainerState, ContainerStore, is_running


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
        return f"Up {_ago(now - state.created).removesuffix(' ago')}"
    if state.exit_code is not None:
        return f"Exited ({state.exit_code}) {_ago(now - (state.finished or now))}"
    return "Dead" if state.status == "running" else "Created"  # its `berth run` was killed


def _ps(args: argparse.Namespace) -> int:
    now = time.time()
    rows = [("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "RUNTIME")]
    for state in ContainerStore(_root(args)).list():
        if not args.all and not is_running(state):
            continue
        command = " ".join(state.command)
        command = command if len(command) <= 22 else command[:19] + "..."
        rows.append(
            (
                state.id[:12],
                state.image,
                f'"{command}"',
                _ago(now - state.created),
                _status(state, now),
                state.runtime,
            )
        )
    if args.quiet:
        print("\n".join(row[0] for row in rows[1:]))
        return 0
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _rm(args: argparse.Namespace) -> int:
    from runtime import kill, remove  # the executor and its syscalls: not for `ps`

    store = ContainerStore(_root(args))
    failed = False
    for name in args.ids:
        try:
            container = store.get(name)
            state = container.state()
            if is_running(state):
                if not args.force:
                    raise CommandError(f"container {name} is running: stop it or use -f")
                kill(container, signal.SIGKILL)
                for _ in range(200):
                    if not is_running(container.state()):
                        break
                    time.sleep(0.05)
            remove(store, container)
            print(name)
        except ContainerNotFound:
            print(f"berth rm: no such container: {name}", file=sys.stderr)
            failed = True
        except (CommandError, OSError) as exc:
            print(f"berth rm: {exc}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ps = subparsers.add_parser("ps", help="list containers")
    ps.add_argument("-a", "--all", action="store_true", help="include stopped containers")
    ps.add_argument("-q", "--quiet", action="store_true", help="only print ids")
    ps.add_argument("--root", help="state directory (default: /var/lib/berth)")
    ps.set_defaults(handler=_ps)
    rm = subparsers.add_parser("rm", help="remove containers")
    rm.add_argument("-f", "--force", action="store_true", help="kill a running container first")
    rm.add_argument("--root", help="state directory (default: /var/lib/berth)")
    rm.add_argument("ids", nargs="+", metavar="ID")
    rm.set_defaults(handler=_rm)
