"""Publishing small files durably without a thread: a helper process does the fsyncs.

A small blob's publish is three blocking calls: an fsync of the new file, its rename, an fsync
of the directory. From a thread, each call hands the GIL back and forth with the busy event
loop: with 4 KiB pushes, about 28 context switches per blob on a two-core machine, and 15% of
the server's CPU. The helper (blobstore.publish_helper_process, one per process that uses it,
started at the first publish) makes the same calls in its own process, for every request that
has arrived meanwhile; the event loop writes a request to a socket and reads the answers when
they come.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import socket
import struct
import subprocess
import sys
from pathlib import Path
from typing import Final

_PROCESS: Final = str(Path(__file__).with_name("publish_helper_process.py"))
_ANSWER: Final = struct.Struct("=i")
_RECV: Final = 1 << 16
_EXIT_WAIT: Final = 10.0  # seconds for the helper to finish its batch once told to stop
# Helpers told to stop (their socket closed) that had not exited yet: reaped later, so that
# none is left a zombie, nor its Popen collected while it runs.
_STOPPING: list[subprocess.Popen[bytes]] = []


class PublishHelperGone(OSError):
    """The helper stopped (killed, or closed) before answering: whether the file was
    published is unknown."""


class PublishHelper:
    """Makes written files durable under their final names, in a helper process of this
    process's own (a forked child starts its own). Used from one event loop at a time."""

    def __init__(self) -> None:
        self._channel: _Channel | None = None

    async def publish(self, path: str, target: str) -> None:
        """fsync the file at `path`, rename it to `target` and fsync the directory of
        `target`. OSError with the errno of the call that failed (FileNotFoundError: nothing
        at `path`); PublishHelperGone when the helper stopped before answering."""
        loop = asyncio.get_running_loop()
        channel = self._channel
        if channel is None or not channel.serves(loop):
            if channel is not None:
                channel.drop()
            channel = self._channel = _Channel(loop)
        await channel.request(path, target)

    async def close(self) -> None:
        """Stop the helper. It finishes the batch in hand; requests still waiting for their
        answer fail with PublishHelperGone."""
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.stop()

    @property
    def pid(self) -> int | None:
        """The helper's process id, while it runs (for tests)."""
        return None if self._channel is None else self._channel.process.pid


class _Channel:
    """One helper process, its socket, and the requests waiting for an answer (in order)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        _reap()
        self.loop = loop
        self._pid = os.getpid()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-S", _PROCESS, str(theirs.fileno())],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        self._sock = ours
        self._waiting: collections.deque[asyncio.Future[None]] = collections.deque()
        self._outbox = bytearray()
        self._inbox = bytearray()
        self._gone: PublishHelperGone | None = None
        loop.add_reader(ours.fileno(), self._readable)

    def serves(self, loop: asyncio.AbstractEventLoop) -> bool:
        return self._gone is None and self.loop is loop and self._pid == os.getpid()

    async def request(self, path: str, target: str) -> None:
        answer = self.loop.create_future()
        self._waiting.append(answer)
        wrote_nothing = not self._outbox
        self._outbox += b"%s\0%s\0" % (os.fsencode(path), os.fsencode(target))
        if wrote_nothing:
            self._send()
        await answer

    def _send(self) -> None:
        try:
            sent = self._sock.send(self._outbox)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._fail(exc)
            return
        del self._outbox[:sent]
        if self._outbox:
            self.loop.add_writer(self._sock.fileno(), self._send_more)

    def _send_more(self) -> None:
        self.loop.remove_writer(self._sock.fileno())
        self._send()

    def _readable(self) -> None:
        try:
            data = self._sock.recv(_RECV)
        except BlockingIOError:
            return
        except OSError as exc:
            self._fail(exc)
            return
        if not data:
            self._fail(None)
            return
        self._inbox += data
        whole = len(self._inbox) - len(self._inbox) % _ANSWER.size
        for (code,) in _ANSWER.iter_unpack(self._inbox[:whole]):
            answer = self._waiting.popleft()
            if answer.done():  # its caller was cancelled
                continue
            if code:
                answer.set_exception(OSError(code, os.strerror(code)))
            else:
                answer.set_result(None)
        del self._inbox[:whole]

    def _fail(self, cause: OSError | None) -> None:
        """The helper is gone: every request waiting fails, and the next publish starts a
        new helper."""
        if self._gone is not None:
            return
        pid = self.process.pid
        self._gone = PublishHelperGone(f"the publishing helper (pid {pid}) stopped: {cause}")
        self._close_socket()
        while self._waiting:
            answer = self._waiting.popleft()
            if not answer.done():
                answer.set_exception(self._gone)
        if self.process.poll() is None:
            _STOPPING.append(self.process)

    def _close_socket(self) -> None:
        if self._pid == os.getpid() and not self.loop.is_closed():
            self.loop.remove_reader(self._sock.fileno())
            self.loop.remove_writer(self._sock.fileno())
        self._sock.close()  # the helper reads the end of its requests, and stops

    def drop(self) -> None:
        """Let go without waiting: a forked child's copy, or one of another event loop."""
        if self._pid != os.getpid():
            self._sock.close()  # the parent's helper is the parent's to stop
            self.process.poll()  # not this process's child: marked as done, never waited for
            return
        self._fail(None)

    async def stop(self) -> None:
        if self._pid != os.getpid():
            self.drop()
            return
        self._fail(None)
        if self.process.poll() is None:
            try:
                await asyncio.to_thread(self.process.wait, _EXIT_WAIT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    await asyncio.to_thread(self.process.wait, _EXIT_WAIT)
        _reap()


def _reap() -> None:
    _STOPPING[:] = [process for process in _STOPPING if process.poll() is None]
