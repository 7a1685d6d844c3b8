"""The monitor's I/O relay (conmon's I/O loop): a process of its own that owns the container's
output, writing it to the json-file log and to every attached client, and its input.

Without a terminal the container writes to two pipes (stdout, stderr) and, with `-i`, reads a
third. With one (`-t`), the container's process opens a pseudo-terminal in its own devpts
and sends the master over the console socket (SCM_RIGHTS, as runc's --console-socket); the
relay sets its window size, acknowledges with one byte (so the size is there before the
process is exec'd), reads the master and writes the clients' keystrokes and resizes to it.

The monitor writes each run's exit code to the events pipe: the relay then sends what is left
of the output and the code to the clients (runtime.attach's frames) and closes them. At EOF
on the events pipe (the monitor is done) it ends.
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import selectors
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from runtime import attach, terminal
from runtime.logfile import LogWriter, Rotation

ACK = b"k"


@dataclass
class Streams:
    """The relay's ends of the container's stdio."""

    outputs: dict[int, str] = field(default_factory=dict)  # pipe read end -> stdout|stderr
    stdin: int | None = None  # write end of the container's stdin pipe (-i without -t)
    console: socket.socket | None = None  # receives pty masters (-t)
    console_size: tuple[int, int] | None = None


def _nonblocking(fd: int) -> None:
    os.set_blocking(fd, False)


class Relay:
    def __init__(
        self, listener: socket.socket, events: int, streams: Streams, log: LogWriter
    ) -> None:
        self.selector = selectors.DefaultSelector()
        self.listener = listener
        self.events = events
        self.streams = streams
        self.log = log
        self.master: int | None = None
        self.clients: dict[socket.socket, attach.Frames] = {}
        self.pending_events = b""
        self._watch(listener.fileno(), self._accept)
        self._watch(events, self._event)
        for fd in streams.outputs:
            _nonblocking(fd)
            self._watch(fd, functools.partial(self._output, fd, streams.outputs[fd]))
        if streams.console is not None:
            self._watch(streams.console.fileno(), self._console)

    def _watch(self, fd: int, callback: Callable[[], object]) -> None:
        self.selector.register(fd, selectors.EVENT_READ, callback)

    def _forget(self, fd: int) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(fd)

    def add_client(self, client: socket.socket) -> None:
        client.settimeout(10)  # a client that stops reading is dropped, not waited for
        self.clients[client] = attach.Frames()
        self._watch(client.fileno(), lambda: self._client(client))

    def _drop(self, client: socket.socket) -> None:
        self._forget(client.fileno())
        self.clients.pop(client, None)
        client.close()

    def _broadcast(self, data: bytes) -> None:
        for client in list(self.clients):
            try:
                client.sendall(data)
            except OSError:
                self._drop(client)

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            client, _ = self.listener.accept()
            self.add_client(client)

    def _output(self, fd: int, stream: str) -> bool:
        """Copy what `fd` has now; False when it has nothing (or is closed)."""
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return False
        except OSError:  # EIO: the pty's last slave is closed
            chunk = b""
        self.log.write(stream, chunk)
        if not chunk:
            self._forget(fd)
            os.close(fd)
            if fd == self.master:
                self.master = None
            else:
                self.streams.outputs.pop(fd, None)
            return False
        self._broadcast(attach.frame(attach.STDERR if stream == "stderr" else attach.STDOUT, chunk))
        return True

    def _drain(self) -> None:
        for fd, stream in [*self.streams.outputs.items(), (self.master, "stdout")]:
            while fd is not None and self._output(fd, stream):
                pass

    def _console(self) -> None:
        assert self.streams.console is not None
        try:
            _, fds, _, _ = socket.recv_fds(self.streams.console, 16, 4)
        except OSError:
            fds = []
        if not fds:
            self._forget(self.streams.console.fileno())
            return
        if self.master is not None:  # a restarted container's new terminal replaces the old
            self._drain()
            if self.master is not None:
                self._forget(self.master)
                os.close(self.master)
        master = self.master = fds[0]
        for extra in fds[1:]:
            os.close(extra)
        if self.streams.console_size is not None:
            terminal.resize(master, self.streams.console_size)
        _nonblocking(master)
        self._watch(master, lambda: self._master_output(master))
        with contextlib.suppress(OSError):
            self.streams.console.sendall(ACK)

    def _master_output(self, master: int) -> None:
        if master == self.master:
            self._output(master, "stdout")

    def _input(self, data: bytes) -> None:
        fd = self.master if self.master is not None else self.streams.stdin
        if fd is None:
            return
        view = memoryview(data)
        try:
            while view:
                try:
                    view = view[os.write(fd, view) :]
                except BlockingIOError:
                    select.select([], [fd], [], 1)
        except OSError:  # the container's stdin is closed, or its terminal is gone
            pass

    def _client(self, client: socket.socket) -> None:
        try:
            data = client.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._drop(client)
            return
        for kind, payload in self.clients[client].feed(data):
            if kind == attach.STDIN:
                self._input(payload)
            elif kind == attach.CLOSE_STDIN and self.streams.stdin is not None:
                os.close(self.streams.stdin)
                self.streams.stdin = None
            elif kind == attach.RESIZE:
                rows, _, cols = payload.decode(errors="replace").partition(" ")
                if not (rows.isdigit() and cols.isdigit()):
                    continue  # a client's mistake must not end the relay
                size = (int(rows), int(cols))
                self.streams.console_size = size
                if self.master is not None:
                    terminal.resize(self.master, size)

    def _event(self) -> None:
        chunk = os.read(self.events, 4096)
        if not chunk:
            self._forget(self.events)
            self.running = False
            return
        *codes, self.pending_events = (self.pending_events + chunk).split(b"\n")
        for code in codes:
            self._drain()
            self._broadcast(attach.frame(attach.EXIT, code))
            for client in list(self.clients):
                self._drop(client)

    def run(self) -> None:
        self.running = True
        while self.running:
            for key, _ in self.selector.select():
                key.data()
        self._drain()
        for fd, stream in [*self.streams.outputs.items(), (self.master, "stdout")]:
            if fd is not None:
                self.log.write(stream, b"")  # a last line without its newline


def serve(
    listener: socket.socket,
    events: int,
    streams: Streams,
    log: Path,
    rotation: Rotation,
    first_client: socket.socket | None = None,
) -> None:
    """Relay until the monitor closes `events`; the caller exits afterwards."""
    writer = LogWriter(log, rotation)
    try:
        relay = Relay(listener, events, streams, writer)
        if first_client is not None:
            relay.add_client(first_client)
        relay.run()
    finally:
        writer.close()
