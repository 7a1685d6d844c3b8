"""Zero-copy blob responses: os.sendfile from the blob file straight to the client socket.

aiohttp's FileResponse relies on `loop.sendfile`, which uvloop does not implement, so it falls
back to 256 KiB reads through the thread pool. Here, once the headers have left, a worker
thread runs os.sendfile on a duplicate of the connection's (non-blocking) socket, waiting with
poll() when the socket buffer is full. The event loop writes nothing on that connection
meanwhile. The thread owns its duplicate: if the loop closes the connection (the client went
away), the number can never be reused under the thread for another connection. TLS
connections cannot use sendfile; they get the blob streamed through the event loop.

A response reserves its thread before its headers leave: with every thread taken by slow
clients, the next download waits before its status line, never midway through its body.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import select
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final, TypeVar

from aiohttp import web

STALL_LIMIT: Final = 60.0  # seconds a client may accept no bytes before we give up
_BUFFER_WAIT: Final = 0.001
_POLL_MS: Final = 500


T = TypeVar("T")


class SendfilePool:
    """Threads parked in os.sendfile, each reserved by one response before it starts."""

    def __init__(self, threads: int) -> None:
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="berth-sendfile")
        self._free = asyncio.Semaphore(threads)

    @contextlib.asynccontextmanager
    async def reserved(self) -> AsyncIterator[None]:
        """Hold one thread's place; `run` inside may then start at once."""
        async with self._free:
            yield

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def sendfile_socket(request: web.Request) -> int | None:
    """The connection's socket fd when zero-copy is possible (plain TCP), else None."""
    transport = request.transport
    if transport is None or transport.get_extra_info("sslcontext") is not None:
        return None
    sock = transport.get_extra_info("socket")
    return None if sock is None else int(sock.fileno())


async def send_file(
    request: web.Request,
    response: web.StreamResponse,
    path: Path,
    offset: int,
    count: int,
    pool: SendfilePool,
) -> None:
    """Send `count` bytes of `path` from `offset` as the body of `response` (already has its
    status, headers and Content-Length; not yet prepared)."""
    body = request.method != "HEAD" and count > 0
    async with pool.reserved() if body else contextlib.nullcontext():
        try:
            await response.prepare(request)  # a StreamResponse sends its headers at once
            transport = request.transport
            while transport is not None and transport.get_write_buffer_size() > 0:  # noqa: ASYNC110  (no event for "buffer empty")
                await asyncio.sleep(_BUFFER_WAIT)
            fd = sendfile_socket(request)
            if fd is None or transport is None or transport.is_closing():
                return  # the client went away before the body
            if body:
                own_fd = os.dup(fd)
                stop = threading.Event()
                try:
                    await pool.run(_send_all, own_fd, path, offset, count, stop)
                finally:
                    stop.set()  # also when this handler is cancelled: the thread gives up
            await response.write_eof()
        except ConnectionResetError:
            if request.transport is not None:
                request.transport.close()  # the body is incomplete: the connection cannot go on


def _send_all(sock_fd: int, path: Path, offset: int, count: int, stop: threading.Event) -> None:
    """Runs in a worker thread; owns and closes `sock_fd` (a duplicate)."""
    try:
        file_fd = os.open(path, os.O_RDONLY)
    except OSError:
        os.close(sock_fd)
        raise
    try:
        poller = select.poll()
        poller.register(sock_fd, select.POLLOUT)
        stalled = 0.0
        while count > 0:
            if stop.is_set():
                raise ConnectionResetError("response abandoned")
            try:
                sent = os.sendfile(sock_fd, file_fd, offset, count)
            except BlockingIOError:
                sent = -1
            except OSError as exc:
                if exc.errno in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
                    raise ConnectionResetError("client went away") from exc
                raise
            if sent < 0:
                if poller.poll(_POLL_MS):
                    stalled = 0.0
                else:
                    stalled += _POLL_MS / 1000
                    if stalled >= STALL_LIMIT:
                        raise ConnectionResetError(f"client accepted no bytes for {STALL_LIMIT}s")
                continue
            if sent == 0:
                raise ConnectionResetError(f"{path} ended early at offset {offset}")
            offset += sent
            count -= sent
    finally:
        os.close(file_fd)
        os.close(sock_fd)
