"""The limits on what one layer may unpack to (see `puller.decompress`)."""

from __future__ import annotations

from typing import NamedTuple


class UnpackLimits(NamedTuple):
    """What one layer may unpack to, checked as it streams so that a bomb stops early.

    `max_size` caps a layer's uncompressed bytes. Once past `expansion_floor` uncompressed
    bytes, a layer may not exceed `max_expansion` times the compressed bytes read so far
    (0 turns this off): gzip of zeros inflates about 1000x, real layers rarely 10x.
    """

    max_size: int = 64 * 1024**3
    max_expansion: float = 100.0
    expansion_floor: int = 1024**3
