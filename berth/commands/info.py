"""`berth info`: the machine, the state directory and its contents, laid out as `docker info`
lays them out; `--format json` (or `'{{json .}}'`) gives docker's JSON field names."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("berth")
    except PackageNotFoundError:
        return "unknown"


def collect(root: Path) -> dict[str, Any]:
    """`docker info`'s JSON (the fields Berth has, under docker's names)."""
    from puller import ImageStore
    from runtime.containers import ContainerStore, is_running
    from runtime.hostinfo import host_info

    host = host_info(root)
    states = ContainerStore(root).list()
    running = sum(1 for s in states if is_running(s))
    return {
        "Containers": len(states),
        "ContainersRunning": running,
        "ContainersPaused": 0,
        "ContainersStopped": len(states) - running,
        "Images": len(ImageStore(root).images()),
        "Driver": "overlayfs",
        "DriverStatus": [["Backing Filesystem", host.backing_filesystem]],
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": str(host.cgroup_version),
        "KernelVersion": host.kernel,
        "OperatingSystem": host.operating_system,
        "OSType": "linux",
        "Architecture": host.architecture,
        "NCPU": host.cpus,
        "MemTotal": host.memory,
        "DockerRootDir": str(root),
        "Name": host.name,
        "ServerVersion": _version(),
        "Runtimes": {name: {"path": path or "(built in)"} for name, path in host.runtimes.items()},
        "DefaultRuntime": "berth",
        "RuntimeVersions": host.runtime_versions,
    }


def text(info: dict[str, Any]) -> str:
    from runtime.units import human_size

    lines = [
        "Server:",
        f" Containers: {info['Containers']}",
        f"  Running: {info['ContainersRunning']}",
        f"  Paused: {info['ContainersPaused']}",
        f"  Stopped: {info['ContainersStopped']}",
        f" Images: {info['Images']}",
        f" Server Version: {info['ServerVersion']}",
        f" Storage Driver: {info['Driver']}",
        *(f"  {key}: {value}" for key, value in info["DriverStatus"]),
        f" Logging Driver: {info['LoggingDriver']}",
        f" Cgroup Driver: {info['CgroupDriver']}",
        f" Cgroup Version: {info['CgroupVersion']}",
        f" Runtimes: {' '.join(sorted(info['Runtimes']))}",
        f" Default Runtime: {info['DefaultRuntime']}",
        *(f" {name} version: {v}" for name, v in sorted(info["RuntimeVersions"].items())),
        f" Kernel Version: {info['KernelVersion']}",
        f" Operating System: {info['OperatingSystem']}",
        f" OSType: {info['OSType']}",
        f" Architecture: {info['Architecture']}",
        f" CPUs: {info['NCPU']}",
        f" Total Memory: {human_size(info['MemTotal'], binary=True)}",
        f" Name: {info['Name']}",
        f" Berth Root Dir: {info['DockerRootDir']}",
    ]
    return "\n".join(lines)


def _info(args: argparse.Namespace) -> int:
    from puller import default_root

    info = collect(Path(args.root) if args.root else default_root())
    if args.format:
        from berth.commands._format import render

        print(render(args.format, info))
    else:
        print(text(info))
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("info", help="show system-wide information")
    parser.add_argument(
        "-f", "--format", metavar="TEMPLATE", help="json, '{{json .}}' or '{{.Field}}'"
    )
    parser.add_argument("--root", help="state directory (default: /var/lib/berth)")
    parser.set_defaults(handler=_info)
