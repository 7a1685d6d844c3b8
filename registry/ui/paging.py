"""Page numbers: which slice of a sorted result a `?page=N` shows."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PageSpec:
    number: int  # 1-based
    size: int

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    def count(self, total: int) -> int:
        """How many pages `total` items fill (at least one, so an empty page 1 exists)."""
        return max(1, -(-total // self.size))


def page_number(value: str | None) -> int:
    """`?page=` as a page number; anything unusable is page 1."""
    try:
        number = int(value or "1")
    except ValueError:
        return 1
    return min(max(number, 1), 1_000_000)
