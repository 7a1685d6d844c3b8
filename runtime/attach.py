"""Attaching to a container's stdio, as conmon's attach socket: the monitor's relay
(runtime.relay) listens on `<container>/attach.sock`; `berth attach`, `run -t` and `start -a`
connect and exchange frames, each a kind byte, a 4-byte big-endian length and the payload.

    relay -> client: STDOUT data | STDERR data | EXIT "code"   (then the relay closes)
    client -> relay: STDIN data | CLOSE_STDIN | RESIZE "rows cols"

With a terminal, all output is STDOUT (the pty merges the streams). The client puts the
user's terminal in raw mode, sends the window size at once and on every SIGWINCH, and
detaches on Ctrl-P Ctrl-Q (the container runs on under its monitor).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import struct
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from runtime import terminal

if TYPE_CHECKING:
    from signal import _HANDLER

STDIN, STDOUT, STDERR, EXIT, CLOSE_STDIN, RESIZE = 0, 1, 2, 3, 4, 5
_HEADER = struct.Struct(">BI")
SOCKET_NAME = "attach.sock"


class AttachError(ConnectionError):
    """No relay to attach to, or it went away before the container's exit."""


def frame(kind: int, payload: bytes = b"") -> bytes:
    return _HEADER.pack(kind, len(payload)) + payload


class Frames:
    """Reassembles frames from the bytes a stream socket delivers in arbitrary pieces."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self.buffer += data
        out = []
        while len(self.buffer) >= _HEADER.size:
            kind, size = _HEADER.unpack_from(self.buffer)
            end = _HEADER.size + size
            if len(self.buffer) < end:
                break
            out.append((kind, bytes(self.buffer[_HEADER.size : end])))
            del self.buffer[:end]
        return out


def unix_address(name: str, dirfd: int) -> str:
    """A short path to `name` in the directory open as `dirfd` (which must stay open while
    used), through /proc/self/fd, as conmon does: container directories are too deep for
    sun_path's 108 bytes."""
    return f"/proc/self/fd/{dirfd}/{name}"


def connect(directory: Path) -> socket.socket:
    """A connection to the relay of the container in `directory`; raises AttachError."""
    dirfd = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.connect(unix_address(SOCKET_NAME, dirfd))
    except OSError as exc:
        sock.close()
        raise AttachError("the container has no attach socket: is it running?") from exc
    finally:
        os.close(dirfd)
    return sock


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _send(sock: socket.socket, data: bytes) -> bool:
    """False when the relay is gone: it closes right after a container's exit, which may be
    before we say a word, and the exit frame waits in the socket for us to read."""
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        return False
    return True


def send_size(sock: socket.socket, size: tuple[int, int] | None) -> None:
    if size is not None:
        _send(sock, frame(RESIZE, f"{size[0]} {size[1]}".encode()))


def relay(
    sock: socket.socket,
    *,
    tty: bool,
    stdin: bool,
    close_stdin: bool,
    detach_keys: bytes = terminal.DETACH_KEYS,
) -> int | None:
    """Copy the user's stdin to the container and its output to our stdout/stderr until the
    container exits (its exit code) or the user types `detach_keys` (None). `close_stdin`:
    end the container's stdin at ours (`run -i`), not just stop sending (`attach`)."""
    raw = terminal.raw(0) if tty and stdin else contextlib.nullcontext()
    previous: dict[int, _HANDLER] = {}
    if tty:
        send_size(sock, terminal.window_size(0) or terminal.window_size(1))

        def resized(_signum: int, _frame: FrameType | None) -> None:
            with contextlib.suppress(OSError):
                send_size(sock, terminal.window_size(0) or terminal.window_size(1))

        previous[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, resized)
        if stdin:  # leave the user's terminal as it was, however we are ended

            def ended(signum: int, _frame: FrameType | None) -> None:
                raise SystemExit(128 + signum)

            for sig in (signal.SIGTERM, signal.SIGHUP):
                previous[sig] = signal.signal(sig, ended)
    keys = terminal.DetachKeys(detach_keys)
    frames = Frames()
    reading = [sock.fileno()] + ([0] if stdin else [])
    try:
        with raw:
            while True:
                ready, _, _ = select.select(reading, [], [])
                if 0 in ready:
                    data = os.read(0, 65536)
                    if not data:
                        reading.remove(0)
                        if close_stdin:
                            _send(sock, frame(CLOSE_STDIN))
                    else:
                        data = keys.feed(data)
                        if data and not _send(sock, frame(STDIN, data)):
                            reading.remove(0)  # the container is gone: read its exit
                        if keys.detached:
                            return None
                if sock.fileno() in ready:
                    try:
                        data = sock.recv(65536)
                    except ConnectionResetError:
                        data = b""
                    if not data:
                        raise AttachError("the container's monitor closed the connection")
                    for kind, payload in frames.feed(data):
                        if kind == EXIT:
                            return int(payload)
                        _write_all(2 if kind == STDERR else 1, payload)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
