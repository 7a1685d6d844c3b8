"""`berth network create [--subnet CIDR] [--nat] NAME | ls | rm NAME... | inspect NAME... |
prune [-f]`: bridge networks as docker's (runtime.network). Containers on a user network
reach each other by name; `--network bridge` (or `-p` alone) uses the default one."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from berth.cli import CommandError
from berth.commands._table import print_table


def _store(args: argparse.Namespace) -> Any:
    from puller import default_root
    from runtime.network.store import NetworkStore

    return NetworkStore(Path(args.root) if args.root else default_root())


def _create(args: argparse.Namespace) -> int:
    from runtime.network.store import NetworkError

    if args.driver != "bridge":
        raise CommandError(f"unsupported driver {args.driver!r}: only bridge", status=2)
    try:
        network = _store(args).create(args.name, args.subnet, nat=args.nat)
    except (NetworkError, OSError) as exc:
        raise CommandError(str(exc)) from exc
    print(network.id)
    return 0


def _predefined_id(name: str) -> str:
    return hashlib.sha256(f"berth-network-{name}".encode()).hexdigest()


def _ls(args: argparse.Namespace) -> int:
    rows = [("NETWORK ID", "NAME", "DRIVER", "SCOPE")]
    found = [(n.id, n.name, "bridge") for n in _store(args).list()]
    found += [(_predefined_id("host"), "host", "host"), (_predefined_id("none"), "none", "null")]
    for nid, name, driver in sorted(found, key=lambda r: r[1]):
        rows.append((nid[:12], name, driver, "local"))
    print_table(rows, quiet=args.quiet)
    return 0


def _rm(args: argparse.Namespace) -> int:
    from runtime.network.store import NetworkError

    store, failed = _store(args), False
    for name in args.names:
        try:
            store.remove(name)
            print(name)
        except (NetworkError, OSError) as exc:
            print(f"berth network rm: {exc}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


def _prune(args: argparse.Namespace) -> int:
    from runtime.network.store import DEFAULT_NETWORK, NetworkError

    if not args.force:
        print(
            "WARNING! This will remove all custom networks not used by at least one container.\n"
            "Are you sure you want to continue? [y/N] ",
            end="",
            flush=True,
        )
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    store, removed = _store(args), []
    for network in store.list():
        if network.name != DEFAULT_NETWORK:
            with contextlib.suppress(NetworkError):  # in use: kept
                removed.append(store.remove(network.name).name)
    if removed:
        print("Deleted Networks:\n" + "\n".join(removed))
    return 0


def describe(network: Any) -> dict[str, Any]:
    """docker network inspect's JSON for one network."""
    from runtime.logfile import rfc3339

    containers = {
        cid: {
            "Name": e.name or cid[:12],
            "EndpointID": e.endpoint_id,
            "MacAddress": e.mac,
            "IPv4Address": f"{e.address}/{network.network.prefixlen}",
            "IPv6Address": "",
        }
        for cid, e in sorted(network.endpoints.items())
    }
    return {
        "Name": network.name,
        "Id": network.id,
        "Created": rfc3339(int(network.created * 1e9)),
        "Scope": "local",
        "Driver": "bridge",
        "EnableIPv6": False,
        "IPAM": {
            "Driver": "default",
            "Options": {},
            "Config": [{"Subnet": network.subnet, "Gateway": network.gateway}],
        },
        "Internal": False,
        "Attachable": False,
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": containers,
        "Options": {
            "com.docker.network.bridge.name": network.bridge,
            "com.docker.network.bridge.enable_ip_masquerade": str(network.nat).lower(),
        },
        "Labels": {},
    }


def _inspect(args: argparse.Namespace) -> int:
    from runtime.network.store import NetworkError

    store, found, failed = _store(args), [], False
    for name in args.names:
        try:
            found.append(describe(store.reclaim(name)))
        except NetworkError as exc:
            print(f"berth network inspect: {exc}", file=sys.stderr)
            failed = True
    print(json.dumps(found, indent=4))
    return 1 if failed else 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    network = subparsers.add_parser("network", help="manage networks")
    actions = network.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create a bridge network")
    create.add_argument("--subnet", metavar="CIDR", help="IPv4 subnet (default: a free /24)")
    create.add_argument("-d", "--driver", default="bridge", help="bridge (the only one)")
    create.add_argument(
        "--nat", action="store_true", help="masquerade traffic leaving the subnet (iptables)"
    )
    create.add_argument("name", metavar="NAME")
    create.set_defaults(handler=_create)
    ls = actions.add_parser("ls", aliases=["list"], help="list networks")
    ls.add_argument("-q", "--quiet", action="store_true", help="only print ids")
    ls.set_defaults(handler=_ls)
    rm = actions.add_parser("rm", aliases=["remove"], help="remove networks")
    rm.add_argument("names", nargs="+", metavar="NAME")
    rm.set_defaults(handler=_rm)
    inspect = actions.add_parser("inspect", help="show networks as JSON, as docker does")
    inspect.add_argument("names", nargs="+", metavar="NAME")
    inspect.set_defaults(handler=_inspect)
    prune = actions.add_parser("prune", help="remove the networks no running container uses")
    prune.add_argument("-f", "--force", action="store_true", help="do not ask")
    prune.set_defaults(handler=_prune)
    for parser in (create, ls, rm, inspect, prune):
        parser.add_argument("--root", help="state directory (default: /var/lib/berth)")
