"""Resource scopes of the Docker token spec: parsing, formatting, and what a request needs.

A scope string is `type:name:action[,action]` (several separated by spaces). The name may
contain one `:` (a registry host with a port), so the type ends at the first `:` and the
actions start after the last one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "ALL_ACTIONS",
    "BASE",
    "Access",
    "ScopeError",
    "format_scope",
    "merge",
    "parse_scope",
    "required_access",
]

ALL_ACTIONS = frozenset({"pull", "push", "delete"})

_TYPE = re.compile(r"([a-z0-9]+)(?:\([a-z0-9]+\))?")
_ACTION = re.compile(r"[a-z*]*")
# /v2/<name>/<endpoint>: the name is everything before the last recognised endpoint.
_REPO_ROUTE = re.compile(
    r"/v2/(?P<name>.+?)/(?:manifests/[^/]+|blobs/uploads/?[^/]*|blobs/[^/]+|tags/list"
    r"|referrers/[^/]+)"
)


class ScopeError(ValueError):
    """A scope string that does not follow the grammar."""


@dataclass(frozen=True, slots=True)
class Access:
    """Actions on one resource, as in a token's `access` claim."""

    type: str
    name: str
    actions: frozenset[str]

    def covers(self, other: Access) -> bool:
        """Whether these actions include all of `other`'s on the same resource."""
        if (self.type, self.name) != (other.type, other.name):
            return False
        return "*" in self.actions or other.actions <= self.actions

    def claim(self) -> dict[str, object]:
        return {"type": self.type, "name": self.name, "actions": sorted(self.actions)}


BASE: tuple[Access, ...] = ()
"""What `/v2/` needs: an authenticated caller, no resource."""


def parse_scope(scope: str) -> list[Access]:
    """Parse one `scope` parameter (possibly several space-separated scopes)."""
    accesses = []
    for item in scope.split():
        type_part, sep, rest = item.partition(":")
        name, sep2, actions_part = rest.rpartition(":")
        type_match = _TYPE.fullmatch(type_part)
        if not sep or not sep2 or not name or type_match is None:
            raise ScopeError(f"invalid scope {item!r}")
        actions = [a for a in actions_part.split(",") if a]
        if any(_ACTION.fullmatch(a) is None for a in actions):
            raise ScopeError(f"invalid actions in scope {item!r}")
        # The resource class ("repository(plugin)") is deprecated and ignored.
        accesses.append(Access(type_match.group(1), name, frozenset(actions)))
    return accesses


def merge(accesses: Iterable[Access]) -> list[Access]:
    """Join entries for the same resource, keeping first-seen order; drop empty ones."""
    joined: dict[tuple[str, str], set[str]] = {}
    for access in accesses:
        joined.setdefault((access.type, access.name), set()).update(access.actions)
    return [Access(t, n, frozenset(a)) for (t, n), a in joined.items() if a]


def format_scope(accesses: Iterable[Access]) -> str:
    return " ".join(
        f"{a.type}:{a.name}:{','.join(sorted(a.actions))}" for a in accesses if a.actions
    )


def required_access(method: str, path: str) -> tuple[Access, ...] | None:
    """What a request to the registry API needs, as Distribution decides it.

    None: the path is not part of the registry API (not guarded here). `BASE` (empty): any
    authenticated caller. Otherwise the resource scopes: GET/HEAD pull, DELETE delete (but
    cancelling one's own upload needs only push), other methods pull and push. A mount's
    source repository is not required: the registry asks `allowed()` and falls back to an
    ordinary upload.
    """
    if path != "/v2" and not path.startswith("/v2/"):
        return None
    if path.rstrip("/") == "/v2/_catalog":
        return (Access("registry", "catalog", frozenset({"*"})),)
    match = _REPO_ROUTE.fullmatch(path.rstrip("/"))
    if match is None:
        return BASE
    if method in ("GET", "HEAD"):
        actions = frozenset({"pull"})
    elif method == "DELETE" and "/blobs/uploads" not in path[match.end("name") :]:
        actions = frozenset({"delete"})
    else:
        actions = frozenset({"pull", "push"})
    return (Access("repository", match.group("name"), actions),)
