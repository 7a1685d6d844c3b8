"""`berth run [OPTIONS] REF [CMD [ARG...]]`: run an image like `docker run`, pulling it first
when it is not in the local store. The run options are shared with `berth bundle`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from berth.cli import CommandError
from berth.commands.pull import add_unpack_limits, open_store
from runtime import (
    Container,
    ContainerStore,
    NameInUse,
    OptionError,
    RunOptions,
    StartError,
    UserError,
    create,
    parse_cpus,
    parse_env,
    parse_memory,
    parse_volume,
    remove,
    start,
)
from runtime.containers import check_name
from runtime.restart import Restart

if TYPE_CHECKING:
    from runtime.logfile import Rotation
    from runtime.mountspec import MountRequest
    from runtime.network.ports import PortMapping

BERTH_FAILED = 125  # docker run's status when docker itself fails, not the container


def _restart(value: str) -> Restart:
    try:
        return Restart.parse(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _name(value: str) -> str:
    try:
        return check_name(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def mount_requests(volumes: list[str], mounts: list[str], tmpfs: list[str]) -> list[MountRequest]:
    """`-v`, `--mount` and `--tmpfs`, parsed as docker parses them (runtime.mountspec)."""
    if not (volumes or mounts or tmpfs):
        return []  # `run --rm IMAGE true` loads none of the volume code
    from runtime.mountspec import parse_mount_flag, parse_tmpfs_flag, parse_volume_flag

    try:
        return [
            *(parse_volume_flag(v) for v in volumes),
            *(parse_mount_flag(m) for m in mounts),
            *(parse_tmpfs_flag(t) for t in tmpfs),
        ]
    except OptionError as exc:
        raise CommandError(str(exc)) from exc


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The container options `run` and `bundle` share, named as docker names them."""
    add = parser.add_argument
    add("-e", "--env", action="append", default=[], metavar="K=V", help="set an env variable")
    add("-w", "--workdir", metavar="DIR", help="working directory inside the container")
    add("-u", "--user", metavar="USER[:GROUP]", help="user name or uid, optional group")
    add("--hostname", metavar="NAME", help="container host name (default: short id)")
    add("--entrypoint", metavar="CMD", help="override the image's ENTRYPOINT")
    add("-m", "--memory", metavar="SIZE", help="memory limit, e.g. 64m")
    add("--cpus", metavar="N", help="CPU quota in CPUs, e.g. 0.5")
    add("--pids-limit", type=int, metavar="N", help="maximum number of processes")
    add(
        "--network",
        metavar="NAME",
        help="none (default), host, bridge or a `berth network create` network",
    )
    add(
        "-p",
        "--publish",
        action="append",
        default=[],
        metavar="[IP:][HOSTPORT:]PORT[/udp]",
        help="publish a container port on the host (on the bridge network by default)",
    )
    add("--ip", metavar="ADDRESS", help="the container's IPv4 address on a user network")
    add(
        "-v",
        "--volume",
        action="append",
        default=[],
        metavar="SRC:DST[:ro]",
        help="bind mount a host path (run: or a volume NAME:DST, or DST for an anonymous one)",
    )
    add("--read-only", action="store_true", help="mount the root filesystem read-only")
    add("--plain-http", action="store_true", help="pull over plain HTTP")
    add("--root", type=Path, help="state directory (default: /var/lib/berth)")
    add_unpack_limits(parser)


def _publish(text: str) -> PortMapping:
    from runtime.network.ports import parse_publish  # only for -p: `run` stays lean

    try:
        return parse_publish(text)
    except ValueError as exc:
        raise OptionError(str(exc)) from None


def run_options(args: argparse.Namespace) -> RunOptions:
    try:
        workdir = args.workdir
        publish = tuple(_publish(p) for p in args.publish)
        if workdir is not None and not workdir.startswith("/"):
            raise OptionError(f"the working directory {workdir!r} must be an absolute path")
        return RunOptions(
            command=tuple(args.cmd),
            entrypoint=args.entrypoint,
            env=tuple(parse_env(e) for e in args.env),
            workdir=workdir,
            user=args.user,
            hostname=args.hostname,
            memory=parse_memory(args.memory) if args.memory else None,
            cpu_quota=parse_cpus(args.cpus) if args.cpus else None,
            pids_limit=args.pids_limit,
            network=args.network or ("bridge" if publish else "none"),
            publish=publish,
            ip=args.ip,
            volumes=tuple(parse_volume(v) for v in args.volume),
            read_only=args.read_only,
            interactive=getattr(args, "interactive", False),
            tty=getattr(args, "tty", False),
        )
    except OptionError as exc:
        raise CommandError(str(exc)) from exc


def image_for(args: argparse.Namespace) -> tuple[Path, str, dict[str, Any], list[Path]]:
    """(root, reference, image config, snapshot dirs), pulling the image when missing."""
    from puller import PullerError
    from registry_client.errors import ClientError

    store = open_store(args)
    try:
        record = store.find(args.image)
        if record is None:
            print(f"Unable to find image '{args.image}' locally", file=sys.stderr)
            import asyncio

            record = asyncio.run(store.pull(args.image, plain_http=args.plain_http))
        return store.root, record.reference, store.image_config(record), store.layer_dirs(record)
    except (PullerError, ClientError) as exc:
        raise CommandError(str(exc)) from exc


def _log_rotation(options: list[str]) -> Rotation:
    # runtime.logfile (and runtime.monitor, which `detach` is) load only for -d, -t or
    # --log-opt: a foreground `run` had them at every start-up.
    from runtime.logfile import Rotation

    try:
        return Rotation.parse(options)
    except ValueError as exc:  # OptionError too
        raise CommandError(str(exc), status=BERTH_FAILED) from exc


def _run(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        raise CommandError("berth run needs root (namespaces, cgroups, overlay mounts)")
    if args.restart.policy != "no" and args.rm:
        raise CommandError("conflicting options: --restart and --rm")
    if args.restart.policy != "no" and not args.detach:
        raise CommandError("--restart needs -d: the container monitor applies it")
    if args.log_opt or args.detach or args.tty or args.interactive:  # else never read
        args.log_rotation = _log_rotation(args.log_opt)
    if args.log_opt and not args.detach:
        raise CommandError("--log-opt needs -d: only the container monitor keeps a log")
    requests = mount_requests(args.volume, args.mount, args.tmpfs)
    args.volume = []  # every -v is in `requests`: run_options knows only host binds
    options = run_options(args)
    if args.tty:
        from berth.commands.attach import check_input_terminal, detach_keys

        check_input_terminal(args.tty, args.interactive and not args.detach)
        args.detach_keys = detach_keys(args)  # a bad value fails before anything is made
    root, reference, config, layers = image_for(args)
    store = ContainerStore(root)

    def make(mounts: list[dict[str, Any]]) -> Container:
        return create(
            store,
            reference,
            config,
            layers,
            options,
            runtime=args.runtime,
            host_env=os.environ,
            name=args.name or "",
            mounts=mounts,
        )

    try:
        container = _with_mounts(store, requests, layers, make) if requests else make([])
    except (OptionError, UserError, NameInUse) as exc:
        raise CommandError(str(exc)) from exc
    if args.verbose:
        print(container.id, file=sys.stderr)
    if args.detach or args.tty or args.interactive:
        container.update(
            restart=str(args.restart),
            log_max_size=args.log_rotation.max_size,
            log_max_files=args.log_rotation.max_files,
            tty=args.tty,
            open_stdin=args.interactive,
        )
    if args.detach:
        return _detached(store, container, auto_remove=args.rm)
    if args.tty:  # under a monitor, which owns the terminal (runtime.relay)
        from berth.commands.attach import start_attached

        return start_attached(
            store, container, interactive=args.interactive, auto_remove=args.rm,
            keys=args.detach_keys,
        )  # fmt: skip
    try:
        code = start(container, keep_stdin=args.interactive)
    except StartError as exc:
        print(f"berth run: {exc}", file=sys.stderr)
        code = exc.code
    finally:
        if args.rm:
            remove(store, container, volumes=True)
    return code


def _with_mounts(
    store: ContainerStore,
    requests: list[MountRequest],
    layers: list[Path],
    make: Callable[[list[dict[str, Any]]], Container],
) -> Container:
    from runtime.volumemounts import create_with_mounts
    from runtime.volumes import VolumeError

    try:
        return create_with_mounts(store, requests, layers, make)
    except VolumeError as exc:
        raise CommandError(str(exc)) from exc


def _detached(store: ContainerStore, container: Container, *, auto_remove: bool) -> int:
    """docker run -d: the id once the container runs, which then outlives this process."""
    from runtime import detach

    try:
        detach(store, container, auto_remove=auto_remove)
    except StartError as exc:
        print(f"berth run: {exc}", file=sys.stderr)
        return exc.code
    print(container.id)
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("run", help="run a command in a new container")
    parser.add_argument("--rm", action="store_true", help="remove the container when it exits")
    parser.add_argument("-i", "--interactive", action="store_true", help="keep stdin open")
    parser.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-terminal")
    parser.add_argument("--detach-keys", metavar="KEYS", help="default: ctrl-p,ctrl-q (with -t)")
    parser.add_argument(
        "-d", "--detach", action="store_true", help="run in the background, print the id"
    )
    parser.add_argument("--name", type=_name, help="a name to refer to the container by")
    parser.add_argument(
        "--restart",
        type=_restart,
        default=Restart(),
        metavar="POLICY",
        help="no (default), on-failure[:N], always or unless-stopped (with -d)",
    )
    parser.add_argument(
        "--log-opt",
        action="append",
        default=[],
        metavar="max-size=SIZE|max-file=N",
        help="rotate the log past SIZE, keeping N files (with -d)",
    )
    parser.add_argument(
        "--runtime",
        default="berth",
        choices=("berth", "runc", "crun"),
        help="berth's own executor (default), or hand the bundle to runc/crun",
    )
    parser.add_argument("--verbose", action="store_true", help="print the container id")
    parser.add_argument(
        "--mount", action="append", default=[], metavar="type=bind|volume|tmpfs,...",
        help="attach a mount, in docker's --mount syntax",
    )  # fmt: skip
    parser.add_argument(
        "--tmpfs", action="append", default=[], metavar="DST[:OPTS]", help="mount a tmpfs"
    )
    add_run_options(parser)
    parser.add_argument("image", metavar="REF")
    parser.add_argument("cmd", nargs=argparse.REMAINDER, metavar="CMD")
    parser.set_defaults(handler=_run, failure_status=BERTH_FAILED)
