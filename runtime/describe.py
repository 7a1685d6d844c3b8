"""`berth inspect`: a container as docker's `docker inspect` shows it, with the fields Berth
has (the same names and shapes, so `jq` filters written for docker work on them)."""

from __future__ import annotations

from typing import Any

from runtime.containers import Container, is_running
from runtime.logfile import rfc3339
from runtime.network import settings
from runtime.volumemounts import host_config, records

_ZERO_TIME = "0001-01-01T00:00:00Z"  # docker's "never"


def _time(seconds: float | None) -> str:
    return _ZERO_TIME if seconds is None else rfc3339(int(seconds * 1e9))


def describe(container: Container) -> dict[str, Any]:
    state = container.state()
    running = is_running(state)
    status = "running" if running else ("exited" if state.exit_code is not None else "created")
    policy, _, retries = state.restart.partition(":")
    spec = container.spec()
    process = spec.get("process") or {}
    args = list(state.command)
    given = host_config(container.path)
    return {
        "Id": state.id,
        "Created": _time(state.created),
        "Path": args[0] if args else "",
        "Args": args[1:],
        "State": {
            "Status": status,
            "Running": running,
            "Paused": False,
            "Restarting": False,
            "OOMKilled": False,
            "Dead": state.status == "running" and not running,
            "Pid": state.pid if running and state.pid is not None else 0,
            "ExitCode": state.exit_code or 0,
            "StartedAt": _time(state.started),
            "FinishedAt": _time(state.finished),
        },
        "Image": state.image,
        "LogPath": str(container.log) if container.log.exists() else "",
        "Name": f"/{state.name}" if state.name else "",
        "RestartCount": state.restart_count,
        "Mounts": records(container.path),
        "HostConfig": {
            "Runtime": state.runtime,
            "RestartPolicy": {"Name": policy, "MaximumRetryCount": int(retries or 0)},
            **settings.host_config(container),
            "Binds": given["Binds"],
            "Tmpfs": given["Tmpfs"],
        },
        "Config": {
            "Hostname": spec.get("hostname", ""),
            "Env": list(process.get("env") or []),
            "Cmd": args,
            "Image": state.image,
            "WorkingDir": process.get("cwd", "/"),
            "Tty": state.tty,
            "OpenStdin": state.open_stdin,
            "Volumes": given["ConfigVolumes"],
        },
        "NetworkSettings": settings.network_settings(container, running),
    }
