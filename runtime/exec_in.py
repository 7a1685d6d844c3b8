"""`berth exec`: run a command in a running container, as `docker exec` does.

The process is the container's own (config.json's process: capabilities, no_new_privs, the
environment with the image's ENV) with the command, `-e` additions, `-u USER[:GROUP]`
resolved through the container's /etc/passwd and /etc/group, and `-w`. Berth's executor
joins the namespaces itself (runtime.nsenter); runc and crun get `exec --process FILE`.
A missing or non-executable command gives docker's 127/126 either way.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runtime import nsenter
from runtime.containers import Container, is_running
from runtime.executor import SETUP_FAILED, StartError
from runtime.lookup import check_executable
from runtime.paths import secure_join
from runtime.process import ExecError
from runtime.users import resolve_user


class NotRunning(Exception):
    """The container has no process to join."""


@dataclass(frozen=True, slots=True)
class ExecOptions:
    args: tuple[str, ...]
    env: tuple[str, ...] = ()
    user: str | None = None
    workdir: str | None = None
    tty: bool = False
    interactive: bool = False
    detach: bool = False


def _set(env: list[str], entry: str) -> None:
    key = entry.split("=", 1)[0]
    env[:] = [e for e in env if e.split("=", 1)[0] != key] + [entry]


def _read(root: str, path: str) -> str | None:
    try:
        with open(secure_join(root, path)) as f:
            return f.read()
    except OSError:
        return None


def exec_process(
    spec: Mapping[str, Any], root: str, options: ExecOptions, host_env: Mapping[str, str]
) -> dict[str, Any]:
    """The OCI process for the command: the container's, changed as the options say. `root`
    is the container's root directory as seen from here (/proc/PID/root)."""
    process = dict(spec["process"])
    env = list(process.get("env") or [])
    if options.tty and not any(e.startswith("TERM=") for e in env):
        env.append("TERM=xterm")
    explicit_home = False
    for entry in options.env:
        if "=" in entry:
            _set(env, entry)
        elif entry in host_env:
            _set(env, f"{entry}={host_env[entry]}")
        explicit_home |= entry.split("=", 1)[0] == "HOME"
    if options.user is not None:
        user = resolve_user(options.user, _read(root, "/etc/passwd"), _read(root, "/etc/group"))
        process["user"] = {"uid": user.uid, "gid": user.gid,
                           "additionalGids": list(user.additional_gids)}  # fmt: skip
        if not explicit_home:
            _set(env, f"HOME={user.home}")
    process["env"] = env
    process["args"] = list(options.args)
    process["terminal"] = options.tty
    if options.workdir:
        process["cwd"] = options.workdir
    return process


def _oci_state(runtime: str, cid: str) -> dict[str, Any]:
    import subprocess

    from runtime.oci import STATE_ROOT

    out = subprocess.run(
        [runtime, "--root", os.path.join(STATE_ROOT, runtime), "state", cid],
        capture_output=True,
        check=False,
        timeout=30,
    )
    if out.returncode != 0:
        raise NotRunning(f"container {cid[:12]} is not running")
    state: dict[str, Any] = json.loads(out.stdout)
    return state


def _init_pid(container: Container) -> int:
    state = container.state()
    if not is_running(state) or state.pid is None:
        raise NotRunning(f"container {container.id[:12]} is not running")
    if state.runtime == "berth":
        return state.pid
    oci = _oci_state(state.runtime, container.id)
    if oci.get("status") != "running":
        raise NotRunning(f"container {container.id[:12]} is not running")
    return int(oci["pid"])


def exec_in(container: Container, options: ExecOptions, host_env: Mapping[str, str]) -> int:
    """Run the command; its exit code (0 once started with `detach`). Raises NotRunning,
    users.UserError, or StartError (126/127 when the command cannot be executed)."""
    pid = _init_pid(container)
    spec = container.spec()
    root = f"/proc/{pid}/root"
    process = exec_process(spec, root, options, host_env)
    try:
        check_executable(root, {"process": process, "mounts": spec.get("mounts") or []})
    except ExecError as exc:
        raise StartError(exc.code, f"OCI runtime exec failed: exec failed: {exc}") from None
    cwd = str(process.get("cwd") or "/")
    if not os.path.isdir(secure_join(root, cwd)):  # runc creates it for PID 1, not for exec
        raise StartError(126, f"OCI runtime exec failed: exec failed: chdir to cwd ({cwd!r}) "
                              "set in config.json failed: no such file or directory")  # fmt: skip
    state = container.state()
    if state.runtime == "berth":
        return nsenter.run(
            pid,
            process,
            state.cgroups_path,
            stdin=options.interactive,
            detach=options.detach,
        )
    return _oci_exec(state.runtime, container, process, options)


def _oci_exec(
    runtime: str, container: Container, process: Mapping[str, Any], options: ExecOptions
) -> int:
    """`<runtime> exec --process FILE`; with `-t`, `--console-socket` hands us the pty."""
    import shutil  # these load for runc and crun only: Berth's own exec stays lean
    import subprocess
    import tempfile
    import uuid

    from runtime.oci import STATE_ROOT

    binary = shutil.which(runtime)
    if binary is None:
        raise StartError(SETUP_FAILED, f"{runtime} is not installed")
    path = container.path / f"exec-{uuid.uuid4().hex[:12]}.json"
    if options.tty:  # the OCI process's consoleSize: the pty is sized before the exec
        from runtime.terminal import window_size

        size = window_size(0) or window_size(1)
        if size is not None:
            process = {**process, "consoleSize": {"height": size[0], "width": size[1]}}
    path.write_text(json.dumps(process))
    argv = [binary, "--root", os.path.join(STATE_ROOT, runtime), "exec", "--process", str(path)]
    if options.tty and not options.detach:  # the pty comes to us, as for Berth's executor
        from runtime import oci_console

        try:
            return oci_console.exec_with_terminal(argv, container.id)
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    if options.detach:
        argv.append("--detach")  # (no --tty: nobody would read the terminal)
    argv.append(container.id)
    stdin = None if options.interactive else subprocess.DEVNULL
    try:
        if options.detach:  # the command inherits runc's stdio: no pipe it would hold open
            with tempfile.TemporaryFile() as errors:
                quiet = subprocess.DEVNULL
                done = subprocess.run(argv, stdin=quiet, stdout=quiet, stderr=errors, check=False)
                if done.returncode != 0:
                    errors.seek(0)
                    message = errors.read().decode(errors="replace").strip()
                    raise StartError(SETUP_FAILED, f"{runtime} exec: {message}")
            return 0
        return subprocess.run(argv, stdin=stdin, check=False).returncode
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
