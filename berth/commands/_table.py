"""docker's plain listings (`ps`, `network ls`): columns padded to their widest cell, three
spaces apart; `-q` prints only the first column."""

from __future__ import annotations

from collections.abc import Sequence


def print_table(rows: Sequence[Sequence[str]], *, quiet: bool = False) -> None:
    """`rows[0]` is the header."""
    if quiet:
        print("\n".join(row[0] for row in rows[1:]))
        return
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
