"""config.json for an OCI runtime bundle, built by pure code from the image config and the run
options (../shared/spec/runtime/config.md, config-linux.md), with Docker's defaults."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from runtime import defaults
from runtime.options import OptionError, RunOptions
from runtime.users import ExecUser

OCI_VERSION = "1.0.2"


def command_line(image: Mapping[str, Any], options: RunOptions) -> list[str]:
    """ENTRYPOINT + CMD, as docker combines them with `--entrypoint` and a command."""
    if options.entrypoint is not None:
        entrypoint = [options.entrypoint] if options.entrypoint else []
        cmd = list(options.command)  # a new entrypoint drops the image's CMD
    else:
        entrypoint = list(image.get("Entrypoint") or [])
        cmd = list(options.command) or list(image.get("Cmd") or [])
    args = entrypoint + cmd
    if not args:
        raise OptionError("no command specified")
    return args


def _set(env: list[str], entry: str) -> None:
    key = entry.split("=", 1)[0]
    for i, existing in enumerate(env):
        if existing.split("=", 1)[0] == key:
            env[i] = entry
            return
    env.append(entry)


def environment(
    image: Mapping[str, Any],
    options: RunOptions,
    hostname: str,
    home: str,
    host_env: Mapping[str, str],
) -> list[str]:
    """PATH, HOSTNAME, TERM (with -t), the image's ENV, then `-e`, then HOME if still unset
    (docker's order)."""
    env = [f"PATH={defaults.DEFAULT_PATH}", f"HOSTNAME={hostname}"]
    if options.tty:
        env.append("TERM=xterm")  # as docker adds for -t
    for entry in image.get("Env") or []:
        _set(env, str(entry))
    for entry in options.env:
        if "=" in entry:
            _set(env, entry)
        elif entry in host_env:
            _set(env, f"{entry}={host_env[entry]}")
    if not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={home}")
    return env


def _mounts(options: RunOptions, extra: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    user = [dict(m) for m in extra]
    for volume in options.volumes:
        opts = ["rbind", "rprivate"] + (["ro"] if volume.readonly else [])
        user.append(
            {
                "destination": volume.destination,
                "type": "bind",
                "source": volume.source,
                "options": opts,
            }
        )
    taken = {m["destination"] for m in user}
    mounts = [m for m in defaults.default_mounts() if m["destination"] not in taken]
    return mounts + sorted(user, key=lambda m: str(m["destination"]).count("/"))


def _resources(options: RunOptions) -> dict[str, Any]:
    resources: dict[str, Any] = {"devices": defaults.device_rules()}
    if options.memory is not None:
        resources["memory"] = {"limit": options.memory, "swap": 2 * options.memory}
    if options.cpu_quota is not None:
        quota, period = options.cpu_quota
        resources["cpu"] = {"quota": quota, "period": period}
    if options.pids_limit is not None and options.pids_limit > 0:
        resources["pids"] = {"limit": options.pids_limit}
    return resources


def build_spec(
    image_config: Mapping[str, Any],
    options: RunOptions,
    user: ExecUser,
    *,
    hostname: str,
    cgroups_path: str,
    rootfs: str = "rootfs",
    host_env: Mapping[str, str] | None = None,
    extra_mounts: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The runtime config for one container. `image_config` is the OCI image config JSON."""
    image: Mapping[str, Any] = image_config.get("config") or {}
    caps = list(defaults.CAPABILITIES)
    namespaces = [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]
    if options.network != "host":  # a bridge network's path is set by runtime.network
        namespaces.insert(1, {"type": "network"})
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": options.tty,
            "user": {
                "uid": user.uid,
                "gid": user.gid,
                "additionalGids": list(user.additional_gids),
            },
            "args": command_line(image, options),
            "env": environment(image, options, hostname, user.home, host_env or {}),
            "cwd": options.workdir or image.get("WorkingDir") or "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": True,
        },
        "root": {"path": rootfs, "readonly": options.read_only},
        "hostname": hostname,
        "mounts": _mounts(options, extra_mounts),
        "linux": {
            "namespaces": namespaces,
            "resources": _resources(options),
            "cgroupsPath": cgroups_path,
            "maskedPaths": list(defaults.MASKED_PATHS),
            "readonlyPaths": list(defaults.READONLY_PATHS),
        },
    }
