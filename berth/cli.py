"""The `berth` command line: parses arguments and hands them to one command module.

Start-up is the CLI's own cost on every `berth run`, so a command's module (and what it
imports: the registry, aiohttp, the runtime) is imported only when that command runs.
`COMMANDS` maps each command name to its module and its one-line help; `berth --help` reads
only this table. A module defines `register(subparsers)`, which adds the full parser of every
command it serves and sets `handler=<function(args) -> int>` as that parser's default.

To add a command, add one line to `COMMANDS`:

    "gc": ("berth.commands.gc", "delete blobs no manifest references"),

and write berth/commands/gc.py with `register`. Several commands may share a module (`ps`
and `rm`); `register` then adds all of them. Keep heavy imports inside handlers or in the
command's own module, never at the top of a module another command imports. A module left
out of the table still works, loaded whenever no listed command is named (slower; a test
in tests/unit/test_cli_table.py asks for the table line).

Failures end with one line on stderr, `berth COMMAND: message`, and a non-zero status:
2 for usage and configuration errors, `CommandError.status` or else the command's
`failure_status` default (1; `run` sets 125, as docker does). `--debug` adds the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import os
import sys
from collections.abc import Iterable, Sequence
from importlib import import_module
from typing import Any, NoReturn

COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("berth.commands.serve", "run the registry server"),
    "migrate": ("berth.commands.migrate", "apply database migrations"),
    "gc": ("berth.commands.gc", "remove blobs, links and manifests nothing references"),
    "htpasswd": ("berth.commands.htpasswd", "manage users in an htpasswd file"),
    "pull": ("berth.commands.pull", "pull an image from a registry"),
    "push": ("berth.commands.push", "push a local image to a registry"),
    "images": ("berth.commands.images", "list local images"),
    "tag": ("berth.commands.images", "give a local image another name (TARGET refers to SOURCE)"),
    "rmi": ("berth.commands.images", "remove local images (data stays until prune)"),
    "prune": ("berth.commands.images", "delete content and snapshots no image uses"),
    "mount": ("berth.commands.mount", "mount an image's root filesystem read-only (nodev, nosuid)"),
    "umount": ("berth.commands.mount", "unmount what `berth mount` mounted"),
    "run": ("berth.commands.run", "run a command in a new container"),
    "bundle": ("berth.commands.bundle", "write an OCI runtime bundle for an image"),
    "ps": ("berth.commands.containers", "list containers"),
    "rm": ("berth.commands.containers", "remove containers"),
    "stop": ("berth.commands.containers", "stop running containers (SIGTERM, then SIGKILL)"),
    "logs": ("berth.commands.logs", "show a detached container's output"),
    "kill": ("berth.commands.containers", "send a signal to running containers"),
    "start": ("berth.commands.containers", "start stopped containers in the background"),
    "restart": ("berth.commands.containers", "stop, then start containers"),
    "wait": ("berth.commands.containers", "wait for containers to exit, print their codes"),
    "inspect": ("berth.commands.containers", "show containers as JSON, as docker inspect does"),
    "port": ("berth.commands.port", "list a container's published ports"),
    "network": ("berth.commands.network", "manage networks: create, ls, rm, inspect, prune"),
    "attach": ("berth.commands.attach", "attach to a running container's input and output"),
    "exec": ("berth.commands.exec_command", "run a command in a running container"),
    "login": ("berth.commands.login", "log in to a registry (docker's config.json)"),
    "logout": ("berth.commands.login", "log out from a registry"),
    "info": ("berth.commands.info", "show system-wide information, as docker info"),
    "volume": ("berth.commands.volume", "manage volumes (create, ls, rm, inspect, prune)"),
    "quota": ("berth.commands.quota", "show storage usage against quotas"),
    "events": ("berth.commands.events", "list webhook deliveries pending or failing"),
}

USAGE_STATUS = 2  # argparse's own status for a bad command line


class CommandError(Exception):
    """A failure the user caused or can fix: printed as one line. `status` is the exit
    status (default: the command's `failure_status`; 2 for a usage or config error)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _chosen(argv: Sequence[str]) -> str | None:
    """The command named on the command line (the first word that is not an option)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def _unlisted() -> list[str]:
    """Command modules missing from `COMMANDS` (say, from a branch merged without its table
    line): loaded whenever no listed command is named, so that they work, only slower."""
    import berth.commands

    listed = {module for module, _ in COMMANDS.values()}
    found = (f"berth.commands.{name}" for name in _module_names(berth.commands.__path__))
    return sorted(m for m in found if m not in listed and not m.rpartition(".")[2].startswith("_"))


def _module_names(path: Iterable[str]) -> set[str]:
    """The modules and packages in the directories `path` lists: what pkgutil.iter_modules
    finds for plain source trees, without importing pkgutil (and inspect with it), which
    cost `berth --help` more than the listing does."""
    names = set()
    for directory in path:
        with os.scandir(directory) as entries:
            for entry in entries:
                stem, dot, suffix = entry.name.partition(".")
                if not stem.isidentifier() or stem == "__init__":
                    continue
                module = dot and suffix == "py" and entry.is_file()
                package = not dot and os.path.isfile(os.path.join(entry.path, "__init__.py"))
                if module or package:
                    names.add(stem)
    return names


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter, with the terminal's width looked up once per process: argparse
    makes a formatter for every argument added (37 for `berth run`), and each asked
    shutil.get_terminal_size (importing shutil, reading COLUMNS, an ioctl)."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        width = _terminal_width() - 2 if width is None else width
        super().__init__(prog, indent_increment, max_help_position, width)


@functools.cache
def _terminal_width() -> int:
    """shutil.get_terminal_size().columns, without importing shutil."""
    with contextlib.suppress(ValueError):
        if (columns := int(os.environ.get("COLUMNS", "0"))) > 0:
            return columns
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 80


class _Parser(argparse.ArgumentParser):
    """Every berth parser and sub-parser: the shared `_Formatter` by default."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser, with only the sub-parser of the command in `argv` (every command's when
    `argv` is None). Without a listed command, one-line stubs list them for `--help`."""
    parser = _Parser(prog="berth", description="A container image registry, puller and runner.")
    parser.add_argument("--debug", action="store_true", help="print the traceback of a failure")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = _chosen(argv) if argv is not None else None
    if argv is None:
        modules = [*dict.fromkeys(module for module, _ in COMMANDS.values()), *_unlisted()]
    elif chosen in COMMANDS:
        modules = [COMMANDS[chosen][0]]
    else:
        for name, (_, help_text) in COMMANDS.items():
            subparsers.add_parser(name, help=help_text)
        modules = _unlisted()
    for module in modules:
        before = set(subparsers.choices)
        import_module(module).register(subparsers)
        for name in subparsers.choices.keys() - before:  # `berth pull --debug` works too
            subparsers.choices[name].add_argument(
                "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
            )
    return parser


_OWN_PACKAGES = frozenset({"berth", "blobstore", "puller", "registry", "runtime"})


def _one_line(exc: BaseException) -> str:
    """Berth's own errors (and OSError) say what happened; others get their type's name."""
    text = " ".join(str(exc).split())
    own = type(exc).__module__.partition(".")[0] in _OWN_PACKAGES
    if text and (own or isinstance(exc, OSError)):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command in `argv`; without `argv` (as the `berth` program) this also ends the
    process, skipping the interpreter's teardown (see `_leave`)."""
    if argv is not None:
        return _main(list(argv))
    try:
        status = _main(sys.argv[1:], program=True)
    except SystemExit as exc:  # argparse's --help and usage errors
        status = _exit_status(exc.code)
    _leave(status)


def _start_up(argv: list[str]) -> argparse.Namespace:
    """The parsed command line, with the command's module (and what it imports) loaded.
    The cyclic garbage collector is off meanwhile, and what start-up made is then frozen
    (gc.freeze: never scanned again): imports make tens of thousands of objects that all
    stay alive, and collecting them over and over took 26 passes, ~5 ms, of a `berth
    run`; a forked child scanning them would also copy their pages. The command itself
    runs with the collector on. Only for the `berth` program: a caller of main(argv)
    keeps its collector as it was."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return build_parser(argv).parse_args(argv)
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def _exit_status(code: object) -> int:
    """What `sys.exit(code)` would make the process's status (a message goes to stderr)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _leave(status: int) -> NoReturn:
    """End the process now. Tearing the interpreter down (freeing every module, class and
    object one by one) took 15-25 ms after `berth run`, more than a tenth of the command;
    the kernel frees all of it at once. What a normal exit does that matters still happens:
    atexit callbacks run and stdout/stderr are flushed. With another thread still running
    the exit is the normal one, which waits for it; so it is under a profiler or tracer
    (`python -m cProfile -m berth` writes its output once main returns)."""
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        sys.exit(status)
    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(status)
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:  # None when started with the descriptor closed
                stream.flush()
        except (OSError, ValueError):  # a closed pipe: Python's own exit says 120
            status = status or 120
    os._exit(status)


def _main(argv: list[str], *, program: bool = False) -> int:
    args = _start_up(argv) if program else build_parser(argv).parse_args(argv)
    failure_status = int(getattr(args, "failure_status", 1))
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001  (every failure ends as one line, see above)
        if args.debug:
            import traceback

            traceback.print_exc()
        print(f"berth {args.command}: {_one_line(exc)}", file=sys.stderr)
        if isinstance(exc, CommandError) and exc.status is not None:
            return exc.status
        return failure_status


if __name__ == "__main__":
    sys.exit(main())
