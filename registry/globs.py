"""Repository globs, as `auth.access`, `quotas`, `retention` and `immutabletags` write them.

`*` and `?` stay inside one path component, `**` crosses `/`: `team-a/**` is everything under
team-a, `**` everything. Tags contain no `/`, so the same globs serve as tag patterns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

__all__ = ["compile_pattern", "matches_any"]


@lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Translate a glob to a regular expression (see the module docstring)."""
    parts = re.split(r"(\*\*|\*|\?)", pattern)
    translated = {"**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(translated.get(p, re.escape(p)) for p in parts))


def matches_any(patterns: Iterable[str], name: str) -> bool:
    return any(compile_pattern(p).fullmatch(name) for p in patterns)
