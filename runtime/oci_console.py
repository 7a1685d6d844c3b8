"""runc and crun with a terminal, as conmon drives them: `<runtime> create --console-socket`
makes the container's pty inside it and sends the master to a socket of ours, which passes it
on to the monitor's relay (runtime.console's protocol: the window size is set before
`<runtime> start` lets the process exec). Once `create` has exited, the container's process is
our child through PR_SET_CHILD_SUBREAPER, so we reap it and learn its exit status; then
`<runtime> delete` forgets it."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
from collections.abc import Callable, Sequence

from runtime import _linux, console
from runtime.executor import SETUP_FAILED, StartError, fork_and_supervise
from runtime.supervise import exit_code


def _runtime(binary: str, name: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    from runtime.oci import STATE_ROOT

    return subprocess.run(
        [binary, "--root", os.path.join(STATE_ROOT, name), *args],
        check=False,
        capture_output=True,
        timeout=60,
    )


def _receive_terminal(kind: str, cid: str, launch: Callable[[str, str], None]) -> tuple[int, int]:
    """(pty master, pid): `launch(socket_path, pid_file)` runs the runtime, which connects to
    the socket to send the master and writes the process's pid to the file. Becomes the
    subreaper that will reap that process."""
    from runtime.oci import STATE_ROOT

    _linux.prctl(_linux.PR_SET_CHILD_SUBREAPER, 1)
    os.makedirs(STATE_ROOT, exist_ok=True)
    stem = os.path.join(STATE_ROOT, f"{kind}-{cid[:16]}-{os.getpid()}")
    path, pid_file = f"{stem}.sock", f"{stem}.pid"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        listener.bind(path)
        listener.listen(1)
        try:
            launch(path, pid_file)
            listener.settimeout(10)
            conn, _ = listener.accept()
            with conn:
                master = console.receive_master(conn)
        finally:
            os.unlink(path)
    try:
        with open(pid_file) as f:
            pid = int(f.read().strip())
        os.unlink(pid_file)
    except (OSError, ValueError):
        os.close(master)
        raise
    return master, pid


def run(
    child: Callable[[Sequence[str]], None],
    binary: str,
    name: str,
    cid: str,
    console_socket: int,
    on_start: Callable[[int], None] | None,
) -> int:
    """`child(command)` execs `<runtime> COMMAND... --bundle DIR ID` in the root's namespace."""

    def create(path: str, pid_file: str) -> None:
        command = ("create", "--console-socket", path, "--pid-file", pid_file)
        code = fork_and_supervise(lambda: child(command), None)
        if code != 0:
            raise StartError(SETUP_FAILED, f"{name} create failed with status {code}")

    master, pid = _receive_terminal("console", cid, create)
    try:
        console.send_master(console_socket, master)
    finally:
        os.close(master)
    started = _runtime(binary, name, "start", cid)
    if started.returncode != 0:
        _runtime(binary, name, "delete", "--force", cid)
        message = started.stderr.decode(errors="replace").strip()
        raise StartError(SETUP_FAILED, f"{name} start: {message}")
    if on_start is not None:
        on_start(pid)
    _, status = os.waitpid(pid, 0)
    _runtime(binary, name, "delete", "--force", cid)
    return exit_code(status)


def exec_with_terminal(argv: list[str], cid: str) -> int:
    """`<runtime> exec` with `-t`: `argv` (up to the container id) gets `--detach --tty
    --console-socket`; the master comes to us, sized from our terminal, and we relay it
    (runtime.nsenter) until the process, our child through PR_SET_CHILD_SUBREAPER, exits."""
    from runtime import terminal
    from runtime.nsenter import relay_terminal

    def launch(path: str, pid_file: str) -> None:
        command = [*argv, "--detach", "--tty", "--console-socket", path, "--pid-file",
                   pid_file, cid]  # fmt: skip
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True,
                              check=False, timeout=60)  # fmt: skip
        if done.returncode != 0:
            message = done.stderr.decode(errors="replace").strip()
            raise StartError(SETUP_FAILED, f"OCI runtime exec failed: {message}")

    master, pid = _receive_terminal("exec", cid, launch)
    try:
        terminal.resize(master, terminal.window_size(0) or terminal.window_size(1) or (24, 80))
        relay_terminal(master, pid)
    finally:
        os.close(master)
    _, status = os.waitpid(pid, 0)
    return exit_code(status)
