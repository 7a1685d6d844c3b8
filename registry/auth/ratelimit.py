"""Failed-login throttling: a token bucket per client address.

Each failed login takes one token; a bucket refills at `per_minute` tokens a minute up to
`burst`. While a client's bucket is empty, every login attempt from it (right or wrong) is
refused with a Retry-After, so guessing passwords costs time. State is per process.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

__all__ = ["LoginLimiter"]

_MAX_CLIENTS = 65536


@dataclass
class LoginLimiter:
    burst: int = 10
    per_minute: float = 10.0
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # tokens, at

    def _tokens(self, client: str, now: float) -> float:
        tokens, at = self._buckets.get(client, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - at) * self.per_minute / 60.0)

    def retry_after(self, client: str, now: float | None = None) -> int | None:
        """Seconds until `client` may try again, or None if it may try now."""
        now = time.monotonic() if now is None else now
        tokens = self._tokens(client, now)
        if tokens >= 1.0:
            return None
        if self.per_minute <= 0:
            return 3600
        return max(1, math.ceil((1.0 - tokens) * 60.0 / self.per_minute))

    def failed(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if len(self._buckets) >= _MAX_CLIENTS:
            self._forget_full(now)
        self._buckets[client] = (max(0.0, self._tokens(client, now) - 1.0), now)

    def _forget_full(self, now: float) -> None:
        for client in [c for c in self._buckets if self._tokens(c, now) >= self.burst]:
            del self._buckets[client]
        if len(self._buckets) >= _MAX_CLIENTS:  # under attack from many addresses
            self._buckets.clear()
