"""The container monitor, as conmon or containerd-shim are: `berth run -d` forks twice, so a
process of its own session, adopted by init, owns the container. It starts it (its PID 1 is
the monitor's child), copies its stdout and stderr to the container's log, records its exit
status in state.json and, for `--rm`, removes it. The CLI returns once the process has been
exec'd (or setup failed), and the container outlives it.

    berth run -d ──fork──> child: setsid ──fork──> monitor ──fork──> container PID 1
         │                    └ exits                 │    └─fork──> log copier
         └ reads "0" or "CODE\\nmessage" from the ready pipe, prints the id

The log copier is a process of its own (threads and fork do not mix), reading two pipes the
container writes to; it ends at EOF, once the container and the monitor are gone, so the log
is complete when the monitor's pid is gone (what `berth logs -f` waits for).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from typing import TYPE_CHECKING, NoReturn

from runtime import logfile
from runtime.containers import Container, ContainerStore
from runtime.executor import SETUP_FAILED, StartError
from runtime.launch import remove, start
from runtime.restart import Restart, delay
from runtime.supervise import exit_code

if TYPE_CHECKING:  # the relay and sockets load in the monitor only: `run --rm` stays lean
    import socket


def detach(
    store: ContainerStore,
    container: Container,
    *,
    auto_remove: bool = False,
    attached: bool = False,
    console_size: tuple[int, int] | None = None,
) -> socket.socket | None:
    """Start `container` under a monitor of its own and return once it runs; raises
    StartError (with docker's code) when it could not be started. `attached`: return a
    connection to its relay (runtime.attach) made before the container starts, so that none
    of its output is missed. `console_size`: its terminal's (rows, columns) to begin with."""
    import socket

    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    ours, theirs = socket.socketpair() if attached else (None, None)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the monitor's side, seen through its effects
        try:
            os.close(read_end)
            if ours is not None:
                ours.close()
            os.setsid()
            if os.fork() == 0:
                _monitor(store, container, write_end, auto_remove, theirs, console_size)
        finally:
            os._exit(0)
    os.close(write_end)
    if theirs is not None:
        theirs.close()
    os.waitpid(pid, 0)
    chunks = []
    try:
        while chunk := os.read(read_end, 4096):
            chunks.append(chunk)
    finally:
        os.close(read_end)
    status, _, message = b"".join(chunks).decode(errors="replace").partition("\n")
    if status != "0":
        if ours is not None:
            ours.close()
        code = int(status) if status.isdigit() else SETUP_FAILED
        raise StartError(code, message or "the container monitor failed")
    return ours


def _null_stdio() -> None:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def _run_once(container: Container, ready: int, stdin: bool, console_socket: int | None) -> int:
    """Run the container in a child of the monitor (Berth's executor can run once per
    process) and return its exit code; the child reports to `ready` if it is open."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - seen through its effects
        code = SETUP_FAILED

        def report(message: str) -> None:
            nonlocal ready
            if ready >= 0:
                with contextlib.suppress(OSError):
                    os.write(ready, message.encode())
                os.close(ready)
                ready = -1

        try:
            code = start(
                container,
                keep_stdin=stdin,
                on_start=lambda _pid: report("0"),
                console_socket=console_socket,
            )
        except StartError as exc:
            os.write(2, f"berth: {exc}\n".encode())  # into the container's log
            report(f"{exc.code}\n{exc}")
            code = exc.code
        except BaseException as exc:  # noqa: BLE001  (the CLI must hear of every failure)
            import traceback  # here: only a failure needs it (start-up time)

            traceback.print_exc()
            report(f"{SETUP_FAILED}\n{type(exc).__name__}: {exc}")
        report(f"{SETUP_FAILED}\nthe container exited before it started")  # once reported: no-op
        sys.stderr.flush()
        os._exit(code)
    if ready >= 0:
        os.close(ready)  # the child's copy is the one that reports
    _, status = os.waitpid(pid, 0)
    return exit_code(status)


def _listen(container: Container) -> socket.socket:
    """The attach socket, bound before `run -d` returns so that `attach` finds it at once."""
    import socket

    from runtime import attach

    path = container.path / attach.SOCKET_NAME
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    dirfd = os.open(container.path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(attach.unix_address(attach.SOCKET_NAME, dirfd))
    finally:
        os.close(dirfd)
    os.chmod(path, 0o600)
    listener.listen(16)
    return listener


def _monitor(
    store: ContainerStore,
    container: Container,
    ready: int,
    auto_remove: bool,
    client: socket.socket | None,
    console_size: tuple[int, int] | None,
) -> NoReturn:
    """The monitor process: never returns."""
    import socket

    from runtime import attach, relay

    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)  # a closed terminal or pipe is no concern of ours
    os.chdir("/")
    _null_stdio()
    container.log.touch(0o640)  # before `run -d` returns: `berth logs` finds it at once
    state = container.state()
    listener = _listen(container)
    events_r, events_w = os.pipe2(os.O_CLOEXEC)
    streams = relay.Streams(console_size=console_size)
    theirs: list[int] = [events_r]  # the relay's pipe ends, closed here after the fork
    ours: list[int] = []  # the container's, closed in the relay
    console_container = None
    if state.tty:  # the container makes its own pty and sends the master (runtime.console)
        streams.console, console_container = socket.socketpair()
    else:
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        os.dup2(out_w, 1)  # the container's stdout and stderr, inherited across its exec
        os.dup2(err_w, 2)
        streams.outputs = {out_r: "stdout", err_r: "stderr"}
        theirs += [out_r, err_r]
        ours += [out_w, err_w]
        if state.open_stdin:
            in_r, in_w = os.pipe2(os.O_CLOEXEC)
            os.dup2(in_r, 0)
            streams.stdin = in_w
            theirs.append(in_w)
            ours.append(in_r)
    if os.fork() == 0:  # the relay
        try:
            _null_stdio()
            for fd in (ready, events_w, *ours):
                os.close(fd)
            if console_container is not None:
                console_container.close()
            rotation = logfile.Rotation(state.log_max_size, state.log_max_files)
            relay.serve(listener, events_r, streams, container.log, rotation, client)
            with contextlib.suppress(OSError):
                (container.path / attach.SOCKET_NAME).unlink()
        finally:
            os._exit(0)
    for fd in theirs + ours:
        os.close(fd)
    for sock in (listener, streams.console, client):
        if sock is not None:
            sock.close()
    console_socket = console_container.fileno() if console_container is not None else None

    state = container.update(monitor_pid=os.getpid(), stopped=False)
    policy = Restart.parse(state.restart)
    while True:
        code = _run_once(container, ready, state.open_stdin, console_socket)
        ready = -1  # only the first run reports to `berth run -d`
        with contextlib.suppress(OSError):
            os.write(events_w, f"{code}\n".encode())  # the relay tells attached clients
        try:
            state = container.state()
            if policy.again(code, state.restart_count, state.stopped):
                time.sleep(delay(state.restart_count))
                state = container.update(restart_count=state.restart_count + 1)
                if not state.stopped:
                    continue
        except (OSError, ValueError):  # removed meanwhile
            pass
        break
    sys.stderr.flush()
    _null_stdio()  # the relay sees EOF once the container's copies are closed too
    os.close(events_w)
    with contextlib.suppress(ChildProcessError):
        while True:
            os.wait()  # the relay (and anything the container left to us)
    if auto_remove:
        with contextlib.suppress(OSError):
            remove(store, container, volumes=True)  # docker run --rm: anonymous ones too
    os._exit(0)
