"""A webhook receiver for tests: records every envelope it is sent, in arrival order.

It can answer 503 (`refuse = True`), or be down altogether (`stop()`, later `start()` on the
same port). Runs in a thread, so both in-process and `berth serve` registries can post to it.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.server import free_port


class Receiver:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.envelopes: list[dict[str, Any]] = []
        self.requests: list[dict[str, str]] = []  # headers of each request
        self.refuse = False
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events"

    @property
    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return [event for envelope in self.envelopes for event in envelope["events"]]

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if receiver.refuse:
                    self.send_response(503)
                else:
                    with receiver._lock:
                        receiver.envelopes.append(json.loads(body))
                        receiver.requests.append(dict(self.headers))
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for(
        self, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 60.0
    ) -> list[dict[str, Any]]:
        """Poll (bounded) until `done(events)`; returns the events either way."""
        for _ in range(int(timeout / 0.1)):
            events = self.events
            if done(events):
                return events
            time.sleep(0.1)
        return self.events

    async def await_events(
        self, done: Callable[[list[dict[str, Any]]], bool], polls: int = 600
    ) -> list[dict[str, Any]]:
        """`wait_for` for tests whose event loop runs the registry (`polls` of 50 ms)."""
        for _ in range(polls):
            events = self.events
            if done(events):
                return events
            await asyncio.sleep(0.05)
        return self.events
