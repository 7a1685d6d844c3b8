"""Letting the machine come to rest before each benchmark run.

A run leaves work behind that outlives its server: dirty pages of files it wrote without
syncing (Distribution never fsyncs a blob), discards of the blocks its deleted data dir held,
and whatever the kernel does about both. Started straight after, the next run shares the CPUs
and the disk with that work, so a server measured second or third was slower than the same
server measured first (blob HEAD cost 184, 246 and 211 µs of server CPU in three back-to-back
Berth runs; 186, 181 and 179 µs with a rest before each). Both servers get the same rest.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

_QUIET_BUSY = 0.10  # of the machine's CPU time, iowait counted as busy
_WINDOW = 1.0


def _busy_fraction(window: float) -> float:
    """The share of CPU time over `window` seconds that was neither idle nor steal."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3]  # iowait (fields[4]) is the disk still at work: busy
        steal = fields[7] if len(fields) > 7 else 0
        return sum(fields) - steal, idle

    total0, idle0 = sample()
    time.sleep(window)
    total1, idle1 = sample()
    total = total1 - total0
    return 1.0 - (idle1 - idle0) / total if total > 0 else 0.0


def settle(minimum: float, maximum: float) -> float:
    """Sync, rest `minimum` seconds, then until a second passes quietly (at most `maximum`
    seconds in all). Returns the seconds it took."""
    start = time.monotonic()
    os.sync()
    time.sleep(max(0.0, minimum - (time.monotonic() - start)))
    while time.monotonic() - start < maximum:
        if _busy_fraction(_WINDOW) < _QUIET_BUSY:
            break
    return time.monotonic() - start
