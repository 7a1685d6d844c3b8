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


def run(
    child: Callable[[Sequence[str]], None],
    binary: str,
    name: str,
    cid: str,
    console_socket: int,
    on_start: Callable[[int], None] | None,
) -> int:
    """`child(command)` execs `<runtime> COMMAND... --bundle DIR ID` in the root's namespace."""
    from runtime.oci import STATE_ROOT

    _linux.prctl(_linux.PR_SET_CHILD_SUBREAPER, 1)
    os.makedirs(STATE_ROOT, exist_ok=True)
    path = os.path.join(STATE_ROOT, f"console-{cid[:16]}-{os.getpid()}.sock")
    pid_file = os.path.join(STATE_ROOT, f"{cid[:16]}-{os.getpid()}.pid")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        listener.bind(path)
        listener.listen(1)
        try:
            command = ("create", "--console-socket", path, "--pid-file", pid_file)
            code = fork_and_supervise(lambda: child(command), None)
            if code != 0:
                raise StartError(SETUP_FAILED, f"{name} create failed with status {code}")
            listener.settimeout(10)
            conn, _ = listener.accept()
            with conn:
                master = console.receive_master(conn)
        finally:
            os.unlink(path)
    try:
        console.send_master(console_socket, master)
    finally:
        os.close(master)
    with open(pid_file) as f:
        pid = int(f.read().strip())
    os.unlink(pid_file)
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
