"""Runs pulled images like `docker run`: OCI bundles (config.json from the image config) on an
overlay root, executed by Berth's own Linux executor or handed to runc or crun."""

from runtime.containers import (
    Container,
    ContainerNotFound,
    ContainerState,
    ContainerStore,
    is_running,
)
from runtime.executor import StartError
from runtime.launch import RUNTIMES, create, kill, make_spec, remove, start, write_bundle
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
