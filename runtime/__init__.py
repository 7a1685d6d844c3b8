"""Runs pulled images like `docker run`: OCI bundles (config.json from the image config) on an
overlay root, executed by Berth's own Linux executor or handed to runc or crun.

Names load on first use (PEP 562): `berth ps` needs the container records, not the
executor or ctypes.
"""

import importlib
import typing

__all__ = [
    "RUNTIMES",
    "create",
    "start",
    "remove",
    "kill",
    "make_spec",
    "write_bundle",
    "StartError",
    "Container",
    "ContainerNotFound",
    "ContainerState",
    "ContainerStore",
    "is_running",
    "finished",
    "NameInUse",
    "stop",
    "detach",
    "RunOptions",
    "Volume",
    "OptionError",
    "parse_memory",
    "parse_cpus",
    "parse_volume",
    "parse_env",
    "ExecUser",
    "UserError",
    "resolve_user",
    "build_spec",
    "command_line",
    "environment",
    "Mount",
    "parse_options",
    "overlay_mount",
    "mount_image",
    "unmount",
]

_EXPORTS: dict[str, str] = {
    "Container": "runtime.containers",
    "ContainerNotFound": "runtime.containers",
    "ContainerState": "runtime.containers",
    "ContainerStore": "runtime.containers",
    "is_running": "runtime.containers",
    "finished": "runtime.containers",
    "NameInUse": "runtime.containers",
    "stop": "runtime.launch",
    "detach": "runtime.monitor",
    "StartError": "runtime.executor",
    "RUNTIMES": "runtime.launch",
    "create": "runtime.launch",
    "kill": "runtime.launch",
    "make_spec": "runtime.launch",
    "remove": "runtime.launch",
    "start": "runtime.launch",
    "write_bundle": "runtime.launch",
    "Mount": "runtime.mounts",
    "parse_options": "runtime.mounts",
    "OptionError": "runtime.options",
    "RunOptions": "runtime.options",
    "Volume": "runtime.options",
    "parse_cpus": "runtime.options",
    "parse_env": "runtime.options",
    "parse_memory": "runtime.options",
    "parse_volume": "runtime.options",
    "overlay_mount": "runtime.overlay",
    "build_spec": "runtime.spec",
    "command_line": "runtime.spec",
    "environment": "runtime.spec",
    "ExecUser": "runtime.users",
    "UserError": "runtime.users",
    "resolve_user": "runtime.users",
    "mount_image": "runtime.views",
    "unmount": "runtime.views",
}

if typing.TYPE_CHECKING:
    from runtime.containers import (
        Container,
        ContainerNotFound,
        ContainerState,
        ContainerStore,
        NameInUse,
        finished,
        is_running,
    )
    from runtime.executor import StartError
    from runtime.launch import (
        RUNTIMES,
        create,
        kill,
        make_spec,
        remove,
        start,
        stop,
        write_bundle,
    )
    from runtime.monitor import detach
    from runtime.mounts import Mount, parse_options
    from runtime.options import (
        OptionError,
        RunOptions,
        Volume,
        parse_cpus,
        parse_env,
        parse_memory,
        parse_volume,
    )
    from runtime.overlay import overlay_mount
    from runtime.spec import build_spec, command_line, environment
    from runtime.users import ExecUser, UserError, resolve_user
    from runtime.views import mount_image, unmount


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
