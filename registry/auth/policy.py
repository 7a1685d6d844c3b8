"""Who may do what: rules from the `auth.access` config mapping users to repository actions.

Rules only grant; a caller's actions on a repository are the union of every rule that names
the caller (or `*`, any authenticated user; or `anonymous`, a caller without credentials)
and has a pattern matching the repository. Patterns are globs over repository names: `*`
and `?` stay inside one path component, `**` crosses `/` (`team-a/**` is everything under
team-a, `**` everything; registry.globs). Admins may do everything. With no rules at all,
every authenticated user may do everything and anonymous callers nothing, as in Distribution.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from registry.auth.scope import ALL_ACTIONS, Access
from registry.globs import compile_pattern, matches_any

__all__ = ["ANONYMOUS", "ANY_USER", "Policy", "Rule", "compile_pattern"]

ANONYMOUS = "anonymous"
ANY_USER = "*"


@dataclass(frozen=True, slots=True)
class Rule:
    users: frozenset[str]
    repositories: tuple[str, ...]
    actions: frozenset[str]

    def applies(self, user: str | None, repository: str) -> bool:
        if user is None:
            named = ANONYMOUS in self.users
        else:
            named = user in self.users or ANY_USER in self.users
        return named and matches_any(self.repositories, repository)


@dataclass(frozen=True, slots=True)
class Policy:
    """`rules` None means no access section: the Distribution default described above."""

    rules: tuple[Rule, ...] | None = None
    admins: frozenset[str] = field(default_factory=frozenset)

    def repository_actions(self, user: str | None, repository: str) -> frozenset[str]:
        """Actions `user` (None: anonymous) may take on `repository`."""
        if user is not None and (user in self.admins or self.rules is None):
            return ALL_ACTIONS
        if self.rules is None:
            return frozenset()
        granted: set[str] = set()
        for rule in self.rules:
            if rule.applies(user, repository):
                granted |= rule.actions
        return ALL_ACTIONS if "*" in granted else frozenset(granted)

    def may_list_catalog(self, user: str | None) -> bool:
        """The catalog is filtered per repository, so anyone who may pull something may ask."""
        if user is not None:
            return True
        return any(
            ANONYMOUS in r.users and bool(r.actions & {"pull", "*"}) for r in self.rules or ()
        )

    def grant(self, user: str | None, requested: Iterable[Access]) -> list[Access]:
        """The intersection of what was requested with what the policy allows."""
        granted = []
        for access in requested:
            if access.type == "repository":
                allowed = self.repository_actions(user, access.name)
                wanted = allowed if "*" in access.actions else access.actions & allowed
            elif access.type == "registry" and access.name == "catalog":
                wanted = access.actions & {"*"} if self.may_list_catalog(user) else frozenset()
            else:
                wanted = frozenset()
            if wanted:
                granted.append(Access(access.type, access.name, frozenset(wanted)))
        return granted
