"""Count requests being handled, so shutdown can wait for them while their bodies still arrive.

aiohttp's own graceful shutdown stops reading from connections first, which would cut off an
upload whose body is still streaming in; Berth stops accepting, waits for this count to reach
zero (up to http.draintimeout), and only then lets aiohttp shut down.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware


class InFlight:
    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def middleware(self) -> Middleware:
        @web.middleware
        async def track(request: web.Request, handler: Handler) -> web.StreamResponse:
            self.count += 1
            self._idle.clear()
            try:
                return await handler(request)
            finally:
                self.count -= 1
                if self.count == 0:
                    self._idle.set()

        return track

    async def wait_idle(self, limit: float) -> bool:
        """True when no request is in flight, False when `limit` seconds passed first."""
        try:
            await asyncio.wait_for(self._idle.wait(), limit)
        except TimeoutError:
            return False
        return True
