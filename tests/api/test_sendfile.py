"""Blob downloads through os.sendfile threads: when slow clients hold every thread, the next
download waits before its headers, never with its body half sent."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
import socket

import pytest

import registry.app
from registry import Config, create_app
from tests.api.conftest import ClientFactory

THREADS = 2
BLOB = os.urandom(16 << 20)  # more than a loopback socket buffers for a reader that stalls


async def _request(port: int, path: str, *, slow: bool) -> socket.socket:
    sock = socket.socket()
    if slow:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    await loop.sock_sendall(sock, f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    return sock


async def _read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    loop = asyncio.get_running_loop()
    data = b""
    while b"\r\n\r\n" not in data:
        data += await loop.sock_recv(sock, 65536)
    head, body = data.split(b"\r\n\r\n", 1)
    while len(body) < len(BLOB):
        chunk = await loop.sock_recv(sock, 1 << 20)
        assert chunk, "connection closed midway"
        body += chunk
    return head, body


async def test_download_waits_for_a_thread_before_its_headers(
    aiohttp_client: ClientFactory, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry.app, "SENDFILE_THREADS", THREADS)
    client = await aiohttp_client(create_app(config))
    digest = "sha256:" + hashlib.sha256(BLOB).hexdigest()
    pushed = await client.post(f"/v2/big/blobs/uploads/?digest={digest}", data=io.BytesIO(BLOB))
    assert pushed.status == 201
    path = f"/v2/big/blobs/{digest}"
    port = client.server.port
    assert port is not None
    slow = [await _request(port, path, slow=True) for _ in range(THREADS)]
    try:
        await asyncio.sleep(1)  # both threads now sit in poll(), the slow sockets full
        waiting = await _request(port, path, slow=False)
        loop = asyncio.get_running_loop()
        with pytest.raises(TimeoutError):  # not even a status line while no thread is free
            await asyncio.wait_for(loop.sock_recv(waiting, 1), 1.0)
        for sock in slow:
            sock.close()
        head, body = await asyncio.wait_for(_read_response(waiting), 30)
        waiting.close()
    finally:
        for sock in slow:
            with contextlib.suppress(OSError):
                sock.close()
    assert head.startswith(b"HTTP/1.1 200")
    assert hashlib.sha256(body).hexdigest() == digest.removeprefix("sha256:")
