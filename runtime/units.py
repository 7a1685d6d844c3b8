"""Sizes written as docker's go-units writes them: `1.982MB` (HumanSize, decimal) and
`23.59GiB` (BytesSize, binary); four significant digits."""

from __future__ import annotations

_DECIMAL = ("B", "kB", "MB", "GB", "TB", "PB")
_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_size(size: float, *, binary: bool = False) -> str:
    base, units = (1024, _BINARY) if binary else (1000, _DECIMAL)
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return f"{size:.4g}{units[i]}"
