"""Find the container's program in its root filesystem before handing the bundle to runc or
crun, so a missing or non-executable command gives docker's 127/126 whatever the runtime."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from runtime.defaults import DEFAULT_PATH
from runtime.paths import secure_join
from runtime.process import ExecError


def _path(env: list[str]) -> str:
    for entry in env:
        if entry.startswith("PATH="):
            return entry[5:]
    return DEFAULT_PATH


def check_executable(rootfs: str, spec: Mapping[str, Any]) -> None:
    """Raise ExecError(127|126) when args[0] cannot be executed from `rootfs`."""
    process = spec["process"]
    name = str(process["args"][0])
    if "/" in name:
        candidates = [name if name.startswith("/") else os.path.join(process.get("cwd", "/"), name)]
    else:
        candidates = [
            os.path.join(d or ".", name) for d in _path(process.get("env") or []).split(":")
        ]
    mounted = [str(m["destination"]) for m in spec.get("mounts") or []]
    if any(c.startswith(d.rstrip("/") + "/") for c in candidates for d in mounted):
        return  # the program may come from a mount the runtime has yet to make
    denied = False
    for candidate in candidates:
        resolved = secure_join(rootfs, candidate)
        if os.path.isfile(resolved):
            if os.access(resolved, os.X_OK):
                return
            denied = True
    if denied:
        raise ExecError(126, f'exec: "{name}": permission denied')
    if "/" in name:
        raise ExecError(127, f'exec: "{name}": stat {name}: no such file or directory')
    raise ExecError(127, f'exec: "{name}": executable file not found in $PATH')
