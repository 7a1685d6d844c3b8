"""`WWW-Authenticate` challenges (RFC 7235) and token scopes, as pure functions."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

_TOKEN: Final = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED: Final = r'"(?:[^"\\]|\\.)*"'
_SCHEME: Final = re.compile(rf"\s*({_TOKEN})(?=\s|$|,)")
# unquoted values are tokens in RFC 7235; servers also send bare URLs, so take up to a comma
_PARAM: Final = re.compile(rf"\s*({_TOKEN})\s*=\s*({_QUOTED}|[^\s,\"]+)\s*(?:,|$)")
_ESCAPE: Final = re.compile(r"\\(.)")


@dataclass(frozen=True, slots=True)
class Challenge:
    scheme: str  # lowercased: "basic", "bearer"
    params: dict[str, str] = field(default_factory=dict)


def parse_challenges(header: str) -> list[Challenge]:
    """Every challenge in one `WWW-Authenticate` value, in order. Parameter names are
    lowercased; malformed trailing text is ignored rather than failing the pull."""
    challenges: list[Challenge] = []
    position = 0
    while position < len(header):
        scheme = _SCHEME.match(header, position)
        if scheme is None:
            break
        position = scheme.end()
        params: dict[str, str] = {}
        while (param := _PARAM.match(header, position)) is not None:
            value = param.group(2)
            if value.startswith('"'):
                value = _ESCAPE.sub(r"\1", value[1:-1])
            params[param.group(1).lower()] = value
            position = param.end()
        challenges.append(Challenge(scheme.group(1).lower(), params))
        while position < len(header) and header[position] in ", ":
            position += 1
    return challenges


def pull_scope(repository: str) -> str:
    """The token scope a pull of `repository` needs."""
    return f"repository:{repository}:pull"


def push_scope(repository: str, mount_from: str | None = None) -> str:
    """The token scopes a push to `repository` needs: pull and push there, and pull of the
    repository a blob is mounted from (space-separated, one `scope` parameter each)."""
    scope = f"repository:{repository}:pull,push"
    if mount_from and mount_from != repository:
        scope += f" {pull_scope(mount_from)}"
    return scope
