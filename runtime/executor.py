"""Berth's own OCI executor: runs a bundle's config.json in new namespaces and a cgroup.

The calling process unshares a PID namespace for its children and forks once: the child is
PID 1 of the container. It joins the cgroup, unshares the mount, UTS, IPC (and network)
namespaces, builds the root filesystem (runtime.rootfs), drops privileges and execs the
process. Setup errors come back over a close-on-exec pipe. The caller forwards SIGINT,
SIGTERM and friends to the container and returns its exit status (128+N for signal N).

A PID namespace can be set for children only once per process, so `run` is once per process.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from runtime import _linux, cgroups, rootfs
from runtime.mounts import Mount
from runtime.process import ExecError, execute
from runtime.supervise import supervise

SETUP_FAILED = 125  # docker's status when the container could not be started
_NAMESPACES = {"mount": _linux.CLONE_NEWNS, "uts": _linux.CLONE_NEWUTS,
               "ipc": _linux.CLONE_NEWIPC, "network": _linux.CLONE_NEWNET,
               "cgroup": _linux.CLONE_NEWCGROUP}  # fmt: skip
_used = False


class StartError(Exception):
    """The container did not start; `code` is the exit status to report (125, 126 or 127)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def run_setup(setup: Callable[[], None], errors: int) -> NoReturn:
    """In a forked child: run `setup`, which must exec; a failure goes to `errors` as
    "CODE\nmessage" (what fork_and_supervise raises as StartError) and ends the child."""
    code, message = SETUP_FAILED, "unknown error"
    try:
        setup()
    except ExecError as exc:
        code, message = exc.code, str(exc)
    except BaseException as exc:  # noqa: BLE001  (everything must reach the parent)
        message = f"{type(exc).__name__}: {exc}"
    os.write(errors, f"{code}\n{message}".encode())
    os._exit(code)


def fork_and_supervise(
    setup: Callable[[], None],
    on_start: Callable[[int], None] | None,
    forked: Callable[[int], None] | None = None,
) -> int:
    """Fork; the child runs `setup`, which must exec. A setup failure travels back through a
    close-on-exec pipe and is raised here as StartError; otherwise return the exit code.
    `forked(pid)` runs in the parent meanwhile; if it raises, the child is killed and the
    error raised as StartError."""
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the container side, seen through its effects
        os.close(read_end)
        run_setup(setup, write_end)
    os.close(write_end)
    if forked is not None:
        try:
            forked(pid)
        except BaseException as exc:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(read_end)
            if isinstance(exc, Exception):  # as a failure in the child would have come back
                raise StartError(SETUP_FAILED, f"{type(exc).__name__}: {exc}") from exc
            raise
    failure, code = supervise(pid, read_end, on_start)
    if failure:
        status, _, message = failure.decode(errors="replace").partition("\n")
        raise StartError(int(status), message)
    return code


def _namespace_flags(spec: Mapping[str, Any]) -> tuple[int, bool]:
    types = {
        ns["type"] for ns in spec.get("linux", {}).get("namespaces") or [] if not ns.get("path")
    }
    flags = 0
    for name, flag in _NAMESPACES.items():
        if name in types:
            flags |= flag
    return flags, "pid" in types


def _join_namespaces(spec: Mapping[str, Any]) -> int:
    """setns(2) into the namespaces config.json gives a path for; returns their flags."""
    joined = 0
    for ns in spec.get("linux", {}).get("namespaces") or []:
        flag = _NAMESPACES.get(ns["type"])
        if ns.get("path") and flag is not None:
            fd = os.open(ns["path"], os.O_RDONLY | os.O_CLOEXEC)
            try:
                _linux.setns(fd, flag)
            finally:
                os.close(fd)
            joined |= flag
    return joined


class _CgroupHandoff:
    """The parent moves the forked child into the container's cgroup while the child sets
    up: the first write to a v1 cgroup.procs waits for an RCU grace period (7-20 ms here,
    measured), which the child's namespaces and first mounts now overlap. The parent writes
    one byte to a pipe once done (or closes it, having failed); the child waits for that
    once, before anything that depends on its cgroup and before exec."""

    def __init__(self, cgroup: cgroups.Cgroup) -> None:
        self.cgroup = cgroup
        self.read_end, self.write_end = os.pipe2(os.O_CLOEXEC)
        self.waited = False

    def move(self, pid: int) -> None:
        """In the parent, once forked."""
        os.close(self.read_end)
        try:
            self.cgroup.join(pid)
            os.write(self.write_end, b"j")
        finally:
            os.close(self.write_end)

    def forked(self) -> None:
        """In the child, first thing."""
        os.close(self.write_end)

    def wait(self) -> None:
        """In the child: return once in the cgroup."""
        if self.waited:
            return
        self.waited = True
        if os.read(self.read_end, 1) != b"j":
            raise RuntimeError("the container's cgroup could not be joined")
        os.close(self.read_end)


def _no_cgroup() -> None:
    pass


def _child(
    spec: Mapping[str, Any],
    bundle: str,
    overlay: Mount | None,
    in_cgroup: Callable[[], None],
    keep_stdin: bool,
    console_socket: int | None,
) -> None:
    _linux.prctl(_linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    os.setsid()
    flags, _ = _namespace_flags(spec)
    if flags & _linux.CLONE_NEWCGROUP:  # its root is the cgroup the child is in when it unshares
        in_cgroup()
    joined = _join_namespaces(spec)  # a bridge network's, made by runtime.network
    _linux.unshare(flags)
    if flags & _linux.CLONE_NEWNET:
        _linux.loopback_up()
    if flags & _linux.CLONE_NEWUTS and spec.get("hostname"):
        _linux.sethostname(spec["hostname"])
    new_net = bool((flags | joined) & _linux.CLONE_NEWNET)
    rootfs.prepare(spec, bundle, overlay, new_net, in_cgroup)
    in_cgroup()  # limits and device rules hold before the process runs
    if spec["process"].get("terminal") and console_socket is not None:
        from runtime import console  # loaded by run(), before the root is gone

        console.open_terminal(console_socket, int(spec["process"].get("user", {}).get("uid", 0)))
        keep_stdin = True
    execute(spec["process"], keep_stdin=keep_stdin)


def run(
    spec: Mapping[str, Any],
    bundle: str,
    *,
    overlay: Mount | None = None,
    keep_stdin: bool = False,
    on_start: Callable[[int], None] | None = None,
    console_socket: int | None = None,
) -> int:
    """Run the bundle to completion and return its exit status; raises StartError. With
    process.terminal, the pty master goes over `console_socket` (runtime.console)."""
    global _used
    if _used:
        raise RuntimeError("runtime.executor.run can be called once per process")
    _used = True
    if console_socket is not None:
        from runtime import console  # noqa: F401  (for _child: no imports after pivot_root)
    linux = spec.get("linux") or {}
    cgroup = None
    if linux.get("cgroupsPath"):
        cgroup = cgroups.create(linux["cgroupsPath"], linux.get("resources") or {})
    handoff = _CgroupHandoff(cgroup) if cgroup is not None else None

    def setup() -> None:
        if handoff is not None:
            handoff.forked()
        in_cgroup = handoff.wait if handoff is not None else _no_cgroup
        _child(spec, bundle, overlay, in_cgroup, keep_stdin, console_socket)

    try:
        _, new_pid = _namespace_flags(spec)
        if new_pid:
            _linux.unshare(_linux.CLONE_NEWPID)
        return fork_and_supervise(setup, on_start, handoff.move if handoff else None)
    finally:
        if cgroup is not None:
            cgroup.remove()
