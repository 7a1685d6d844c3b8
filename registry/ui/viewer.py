"""Who is looking at the UI and what they may do, decided by the API's own auth objects.

Three modes, from the `auth` section:
- no auth: everyone may browse and delete (as the API allows everyone everything);
- htpasswd users (`scheme: basic`, or the built-in token service): a login form checks the
  same htpasswd file through the same throttled check, and the same access policy decides;
  anonymous visitors get what the policy grants `anonymous`;
- an external token issuer: there are no passwords here, so no login: the UI is read-only and
  shows what the policy grants `anonymous` pull on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from registry.auth.policy import ANONYMOUS, ANY_USER, Policy
from registry.auth.scope import ALL_ACTIONS
from registry.auth.state import AuthState
from registry.ui.listing import Visibility

_READ_ONLY = frozenset({"pull"})


@dataclass(frozen=True, slots=True)
class Viewer:
    user: str | None
    csrf: str
    can_login: bool  # a login form makes sense (htpasswd users exist in this mode)
    delete_enabled: bool  # storage.delete.enabled
    _actions: Callable[[str], frozenset[str]]
    _sees_all: bool
    _prefixes: tuple[str, ...] | None = None

    def may_pull(self, repository: str) -> bool:
        return "pull" in self._actions(repository)

    def may_delete(self, repository: str) -> bool:
        return self.delete_enabled and "delete" in self._actions(repository)

    @property
    def pull_filter(self) -> Callable[[str], bool] | None:
        """None when every repository is visible (so SQL can paginate alone)."""
        return None if self._sees_all else self.may_pull

    @property
    def visibility(self) -> Visibility:
        if self._sees_all:
            return Visibility()
        return Visibility(self.may_pull, self._prefixes)


def login_enabled(state: AuthState | None) -> bool:
    if state is None or state.htpasswd is None:
        return False
    token = state.config.token
    return token is None or not token.external


def make_viewer(
    state: AuthState | None, user: str | None, csrf: str, *, delete_enabled: bool
) -> Viewer:
    if state is None:
        return Viewer(None, csrf, False, delete_enabled, lambda _repo: ALL_ACTIONS, True)
    policy = state.config.policy
    if not login_enabled(state):
        return Viewer(
            None,
            csrf,
            False,
            delete_enabled,
            lambda repo: policy.repository_actions(None, repo) & _READ_ONLY,
            False,
            pull_prefixes(policy, None),
        )
    sees_all = user is not None and (policy.rules is None or user in policy.admins)
    return Viewer(
        user,
        csrf,
        True,
        delete_enabled,
        lambda repo: policy.repository_actions(user, repo),
        sees_all,
        None if sees_all else pull_prefixes(policy, user),
    )


def pull_prefixes(policy: Policy, user: str | None) -> tuple[str, ...] | None:
    """Literal beginnings of the patterns of every rule that may give `user` pull: any name
    the policy lets `user` pull starts with one of them (None: a pattern starts with a
    wildcard). Only narrows the search; the policy still decides every name."""
    if policy.rules is None:
        return None if user is not None else ()
    prefixes: list[str] = []
    for rule in policy.rules:
        if not rule.actions & {"pull", "*"}:
            continue
        if user is None and ANONYMOUS not in rule.users:
            continue
        if user is not None and user not in rule.users and ANY_USER not in rule.users:
            continue
        for pattern in rule.repositories:
            prefix = re.split(r"[*?]", pattern, maxsplit=1)[0]
            if not prefix:
                return None
            prefixes.append(prefix)
    return tuple(dict.fromkeys(prefixes))
