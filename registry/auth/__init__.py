"""Authentication and authorization for the registry API.

The registry core calls exactly two things from here:

- `install(app, config, data_dir, db)` from `create_app`, once, before the app starts. It
  adds whatever the `auth` config section asks for (middleware, the token endpoint). With an
  empty section the registry is open, as CNCF Distribution is without `auth`. The database
  holds what every replica shares: the token signing key and the failed-login counters.
- `allowed(request, repository, action)` where a handler must decide per repository rather
  than per request: filtering `_catalog`, and whether a cross-repository mount may read the
  source repository (otherwise the mount falls back to an ordinary upload).

Names load on first use (PEP 562): checking the section (`parse_auth_config`), as `berth
serve` does before starting anything, needs no HTTP imports.

Modules: `hooks` (the two above), `config` (the section), `htpasswd` (users), `policy`
(rules), `scope` (token scopes and what a request needs), `jws`/`keys`/`tokens` (JWTs),
`ratelimit`, `login`, `guard` (the middleware), `token_service` (`/auth/token`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from registry.auth.config import AuthConfig, parse_auth_config
    from registry.auth.hooks import allowed, install
    from registry.auth.state import AUTH
    from registry.auth.token_service import TOKEN_PATH

__all__ = ["AUTH", "TOKEN_PATH", "AuthConfig", "allowed", "install", "parse_auth_config"]

_HOMES = {
    "AUTH": "registry.auth.state",
    "TOKEN_PATH": "registry.auth.token_service",
    "AuthConfig": "registry.auth.config",
    "parse_auth_config": "registry.auth.config",
    "allowed": "registry.auth.hooks",
    "install": "registry.auth.hooks",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'registry.auth' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
