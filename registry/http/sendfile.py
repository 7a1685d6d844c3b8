"""Zero-copy blob responses: os.sendfile from the blob file straight to the client socket.

aiohttp's FileResponse relies on `loop.sendfile`, which uvloop does not implement, so it falls
back to 256 KiB reads through the thread pool. Here, once the headers have left, a worker
thread runs os.sendfile on a duplicate of the connection's (non-blocking) socket, waiting with
poll() when the socket buffer is full. The event loop writes nothing on that connection
meanwhile. The thread owns its duplicate: if the loop closes the connection (the client went
away), the number can never be reused under the thread for another connection. TLS
connections cannot use sendfile; they get the blob streamed through the event loop.
"""

from __future__ import annotations

import asyncio
import errno
import os
import select
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final

from aiohttp import web

STALL_LIMIT: Final = 60.0  # seconds a client may accept no bytes before we give up
_BUFFER_WAIT: Final = 0.001
_POLL_MS: Final = 500


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
    executor: ThreadPoolExecutor,
) -> None:
    """Send `count` bytes of `path` from `offset` as the body of `response` (already has its
    status, headers and Content-Length; not yet prepared)."""
    try:
        await response.prepare(request)  # a StreamResponse sends its headers at once
        transport = request.transport
        while transport is not None and transport.get_write_buffer_size() > 0:  # noqa: ASYNC110  (no event for "buffer empty")
            await asyncio.sleep(_BUFFER_WAIT)
        fd = sendfile_socket(request)
        if fd is None or transport is None or transport.is_closing():
            return  # the client went away before the body
        if request.method != "HEAD" and count > 0:
            own_fd = os.dup(fd)
            stop = threading.Event()
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(executor, _send_all, own_fd, path, offset, count, stop)
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
