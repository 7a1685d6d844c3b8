"""`berth exec` for Berth's own executor: a new process in a running container, as runc exec
makes one. The caller joins the container's PID namespace (for its children) and forks; the
child joins the container's cgroup and every other namespace of its PID 1 that differs from
ours (user first, mount last: /proc/PID/ns/*), takes its root directory, and execs through
runtime.process (capabilities, user, no_new_privs). With a terminal the child opens a pty in
the container's devpts (runtime.console) and this process relays between it and ours.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

from runtime import _linux, cgroups
from runtime.executor import SETUP_FAILED, StartError, fork_and_supervise, run_setup
from runtime.process import execute
from runtime.supervise import FORWARDED, exit_code

_ORDER = ("user", "cgroup", "ipc", "uts", "net", "mnt")  # as nsenter joins them; pid apart


def _differs(pid: int, ns: str) -> bool:
    return os.stat(f"/proc/{pid}/ns/{ns}").st_ino != os.stat(f"/proc/self/ns/{ns}").st_ino


def _open_namespaces(pid: int) -> list[int]:
    return [os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC)
            for ns in _ORDER if _differs(pid, ns)]  # fmt: skip


def _child(
    namespaces: list[int],
    root: int,
    cgroups_path: str,
    process: Mapping[str, Any],
    *,
    stdin: bool,
    console_socket: int | None,
    detach: bool,
) -> None:
    if not detach:
        _linux.prctl(_linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    os.setsid()
    if cgroups_path:
        with contextlib.suppress(OSError):  # gone with the container; setns then fails too
            cgroups.locate(cgroups_path).join()
    for fd in namespaces:
        _linux.setns(fd)
    os.fchdir(root)
    os.chroot(".")
    os.chdir("/")
    if detach:
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        if os.fork() != 0:
            os._exit(0)  # the grandchild reports a failure to exec, or EOF at its exec
    if console_socket is not None:
        from runtime import console  # loaded by _with_terminal before the fork and chroot

        console.open_terminal(console_socket, int(process.get("user", {}).get("uid", 0)))
        stdin = True
    execute(process, keep_stdin=stdin)


def run(
    pid: int,
    process: Mapping[str, Any],
    cgroups_path: str,
    *,
    stdin: bool = False,
    detach: bool = False,
) -> int:
    """Run `process` (an OCI process object) in the container whose PID 1 is `pid`; its exit
    code (0 at once with `detach`). Raises StartError (126/127 when it cannot be exec'd)."""
    namespaces = _open_namespaces(pid)
    root = os.open(f"/proc/{pid}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    pid_ns = os.open(f"/proc/{pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _differs(pid, "pid"):
            _linux.setns(pid_ns)  # for our children: this process stays where it is
        if process.get("terminal") and not detach:
            return _with_terminal(namespaces, root, cgroups_path, process)
        return fork_and_supervise(
            lambda: _child(namespaces, root, cgroups_path, process, stdin=stdin,
                           console_socket=None, detach=detach),
            None,
        )  # fmt: skip
    finally:
        for fd in (*namespaces, root, pid_ns):
            os.close(fd)


def _with_terminal(
    namespaces: list[int], root: int, cgroups_path: str, process: Mapping[str, Any]
) -> int:
    """Fork the process with a pty of the container's; relay our terminal to it until it
    exits (raw mode, window size on SIGWINCH)."""
    import socket

    from runtime import console, terminal  # for -t only; before the child's chroot

    ours, theirs = socket.socketpair()
    errors_r, errors_w = os.pipe2(os.O_CLOEXEC)
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child == 0:  # pragma: no cover - the container side, seen through its effects
        os.close(errors_r)
        ours.close()
        console_socket = theirs.fileno()
        run_setup(
            lambda: _child(namespaces, root, cgroups_path, process, stdin=True,
                           console_socket=console_socket, detach=False),
            errors_w,
        )  # fmt: skip
    os.close(errors_w)
    theirs.close()
    master = -1
    with ours, contextlib.suppress(ConnectionError, OSError):
        master = console.receive_master(ours)
        terminal.resize(master, terminal.window_size(0) or terminal.window_size(1) or (24, 80))
        ours.sendall(b"k")
    failure = b""
    while chunk := os.read(errors_r, 4096):
        failure += chunk
    os.close(errors_r)
    if failure or master < 0:
        if master >= 0:
            os.close(master)
        _, status = os.waitpid(child, 0)
        code, _, message = failure.decode(errors="replace").partition("\n")
        raise StartError(int(code) if code.isdigit() else SETUP_FAILED, message or "exec failed")
    try:
        relay_terminal(master, child)
    finally:
        os.close(master)
    _, status = os.waitpid(child, 0)
    return exit_code(status)


def relay_terminal(master: int, child: int) -> None:
    """Our terminal (raw) to and from `master` until the last slave closes; SIGWINCH resizes
    it, other signals go to `child`."""
    from runtime import terminal

    def resized(_signum: int, _frame: FrameType | None) -> None:
        size = terminal.window_size(0) or terminal.window_size(1)
        if size is not None:
            terminal.resize(master, size)

    def forward(signum: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signum)

    handler = Callable[[int, FrameType | None], None]
    handlers: dict[signal.Signals, handler] = {s: forward for s in FORWARDED}
    handlers[signal.SIGWINCH] = resized
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    reading = [master, 0]
    try:
        with terminal.raw(0):
            while True:
                ready, _, _ = select.select(reading, [], [])
                if 0 in ready:
                    data = os.read(0, 65536)
                    if data:
                        _write_all(master, data)
                    else:
                        reading.remove(0)
                if master in ready:
                    try:
                        data = os.read(master, 65536)
                    except OSError:  # EIO: the last of the container's slaves closed
                        data = b""
                    if not data:
                        return
                    _write_all(1, data)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
