"""glibc's allocator, told to keep the memory that a blob's bytes stream through.

A blob arrives in pieces of up to a few hundred KiB (each socket read, each body slice the
HTTP parser makes), every one a fresh bytes object that lives until its write to disk. With
glibc's defaults, pieces that size are mmapped or the heap is trimmed as soon as a few of
them are freed, so the next pieces fault their pages in again: page faults were 9% of the
server's CPU for a 256 MiB upload. Served from the heap, and the heap trimmed only once
16 MiB lie free at its top, the same pages are reused. That is at most 16 MiB a process
keeps beyond what it uses, a constant, however much streams through.
"""

from __future__ import annotations

import ctypes
from typing import Final

# <malloc.h>
_M_TRIM_THRESHOLD: Final = -1
_M_MMAP_THRESHOLD: Final = -3

MMAP_THRESHOLD: Final = 4 << 20  # allocations below this come from the heap
TRIM_THRESHOLD: Final = 16 << 20  # free memory at the heap's top kept before giving it back


def keep_freed_memory() -> bool:
    """Tune malloc for this process and every worker it forks afterwards. False where the C
    library has no mallopt or refuses (not glibc): nothing changes there."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # Setting the mmap threshold also stops glibc from moving both thresholds by itself.
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
