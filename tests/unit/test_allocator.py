"""The server's malloc tuning: the pieces a blob streams through in reuse their memory
instead of faulting fresh pages in for every piece."""

from __future__ import annotations

import subprocess
import sys

# A blob's pieces as the server sees them: 16 of 256 KiB alive at once, then all freed.
_STREAM = """
import resource, sys
if sys.argv[1] == "tuned":
    from registry.allocator import keep_freed_memory
    assert keep_freed_memory()

def stream(rounds):
    for _ in range(rounds):
        pieces = [b"x" * (256 << 10) for _ in range(16)]
        del pieces

stream(2)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
stream(40)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _page_faults(mode: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", _STREAM, mode],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return int(result.stdout)


def test_freed_pieces_are_reused_without_page_faults() -> None:
    plain, tuned = _page_faults("plain"), _page_faults("tuned")
    # 40 rounds of 4 MiB: glibc's defaults give the memory back each round (about 1,000
    # faults a round); tuned, the pages stay.
    assert plain > 20_000, plain
    assert tuned < 1_000, tuned
