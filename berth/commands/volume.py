"""`berth volume create|ls|rm|inspect|prune`: volumes as `docker volume` manages them (the
`local` driver; runtime.volumes keeps them under <root>/volumes)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from berth.cli import CommandError
from runtime.options import OptionError
from runtime.units import human_size
from runtime.volumes import NoSuchVolume, VolumeError, VolumeStore


def _store(args: argparse.Namespace) -> VolumeStore:
    from puller import default_root

    return VolumeStore(Path(args.root) if args.root else default_root())


def _labels(items: list[str]) -> dict[str, str]:
    labels = {}
    for item in items:
        key, _, value = item.partition("=")
        if not key:
            raise CommandError(f"invalid label: {item!r}", status=2)
        labels[key] = value
    return labels


def _create(args: argparse.Namespace) -> int:
    if args.driver != "local":
        raise CommandError(f"driver {args.driver!r} is not supported: only local", status=2)
    try:
        volume, _ = _store(args).create(args.name or "", _labels(args.label))
    except OptionError as exc:
        raise CommandError(str(exc)) from exc
    print(volume.name)
    return 0


def _table(rows: list[tuple[str, ...]]) -> None:
    """docker's tabwriter layout: each column at least 10 wide, 3 spaces of padding."""
    widths = [max(10, *(len(r[i]) + 3 for r in rows)) for i in range(len(rows[0]))]
    for row in rows:
        print("".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _ls(args: argparse.Namespace) -> int:
    store = _store(args)
    volumes = store.all()
    used = store.users() if args.filter else {}
    for f in args.filter:
        key, _, value = f.partition("=")
        if key == "dangling" and value in ("true", "false", "1", "0"):
            dangling = value in ("true", "1")
            volumes = [v for v in volumes if (v.name not in used) == dangling]
        elif key == "name" and value:
            volumes = [v for v in volumes if value in v.name]
        elif key == "label" and value:
            label, eq, wanted = value.partition("=")
            volumes = [
                v for v in volumes if label in v.labels and (not eq or v.labels[label] == wanted)
            ]
        elif key == "driver" and value:
            volumes = [v for v in volumes if value == "local"]
        else:
            raise CommandError(
                f"invalid filter {f!r}: dangling=true|false, name=, label=K[=V] or driver=",
                status=2,
            )
    if args.quiet:
        for volume in volumes:
            print(volume.name)
        return 0
    _table([("DRIVER", "VOLUME NAME"), *(("local", v.name) for v in volumes)])
    return 0


def _rm(args: argparse.Namespace) -> int:
    store = _store(args)
    failed = False
    for name in args.names:
        try:
            store.remove(name)
            print(name)
        except NoSuchVolume as exc:
            if not args.force:
                print(f"berth volume rm: {exc}", file=sys.stderr)
                failed = True
        except (VolumeError, OSError) as exc:
            print(f"berth volume rm: {exc}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


def _inspect(args: argparse.Namespace) -> int:
    store = _store(args)
    found, failed = [], False
    for name in args.names:
        try:
            found.append(store.get(name).describe())
        except NoSuchVolume as exc:
            print(f"berth volume inspect: {exc}", file=sys.stderr)
            failed = True
    if args.format:
        from berth.commands._format import render

        for item in found:
            print(render(args.format, item))
    else:
        print(json.dumps(found, indent=4))
    return 1 if failed else 0


def _prune(args: argparse.Namespace) -> int:
    if not args.force:
        which = "local volumes" if args.all else "anonymous local volumes"
        print(
            f"WARNING! This will remove {which} not used by at least one container.\n"
            "Are you sure you want to continue? [y/N] ",
            end="",
            flush=True,
        )
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    removed = _store(args).prune(everything=args.all)
    if removed:
        print("Deleted Volumes:")
        for name, _ in removed:
            print(name)
        print()
    print(f"Total reclaimed space: {human_size(sum(size for _, size in removed))}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("volume", help="manage volumes")
    commands = parser.add_subparsers(dest="volume_command", metavar="COMMAND", required=True)
    create = commands.add_parser("create", help="create a volume")
    create.add_argument("-d", "--driver", default="local", help="volume driver (only local)")
    create.add_argument("--label", action="append", default=[], metavar="K=V", help="a label")
    create.add_argument("name", nargs="?", metavar="NAME", help="default: a random id")
    create.set_defaults(handler=_create)
    ls = commands.add_parser("ls", aliases=["list"], help="list volumes")
    ls.add_argument("-q", "--quiet", action="store_true", help="only print names")
    ls.add_argument(
        "-f",
        "--filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="dangling=true|false, name=PART, label=K[=V], driver=local",
    )
    ls.set_defaults(handler=_ls)
    rm = commands.add_parser("rm", aliases=["remove"], help="remove volumes")
    rm.add_argument("-f", "--force", action="store_true", help="no error for missing volumes")
    rm.add_argument("names", nargs="+", metavar="NAME")
    rm.set_defaults(handler=_rm)
    inspect = commands.add_parser("inspect", help="show volumes as JSON")
    inspect.add_argument("-f", "--format", help="a Go-template subset: {{json .}}, {{.Name}}")
    inspect.add_argument("names", nargs="+", metavar="NAME")
    inspect.set_defaults(handler=_inspect)
    prune = commands.add_parser("prune", help="remove unused anonymous volumes")
    prune.add_argument("-a", "--all", action="store_true", help="named ones too")
    prune.add_argument("-f", "--force", action="store_true", help="do not ask")
    prune.set_defaults(handler=_prune)
    for sub in (create, ls, rm, inspect, prune):
        sub.add_argument("--root", help="state directory (default: /var/lib/berth)")
