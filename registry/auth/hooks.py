"""The two hooks the registry core calls: `install` (once, from create_app) and `allowed`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from registry.auth.config import parse_auth_config
from registry.auth.guard import auth_middleware
from registry.auth.scope import Access
from registry.auth.state import AUTH, IDENTITY, Identity, build_state
from registry.auth.token_service import add_token_routes
from registry.config import ConfigError
from registry.db import Database

__all__ = ["allowed", "install"]


def install(
    app: web.Application,
    config: Mapping[str, Any],
    data_dir: Path,
    db: Database,
    *,
    trusted_proxies: tuple[str, ...] = (),
) -> None:
    """Add authentication to `app` as the `auth` config section asks. ConfigError names the
    key when the section, or a file it names, is unusable."""
    try:
        parsed = parse_auth_config(config or {})
    except ValueError as exc:  # the message names the key
        raise ConfigError(str(exc)) from None
    if parsed is None:
        return
    try:
        state = build_state(parsed, data_dir, db, trusted_proxies)
    except (ValueError, OSError) as exc:  # a key, certificate or JWKS file that is unusable
        raise ConfigError(f"auth: {exc}") from None
    app[AUTH] = state
    app.middlewares.append(auth_middleware(state))
    if state.issuer is not None:
        add_token_routes(app)


def allowed(request: web.Request, repository: str, action: str) -> bool:
    """Whether the caller of `request` may `action` ("pull", "push", "delete") `repository`."""
    state = request.config_dict.get(AUTH)
    if state is None:
        return True
    identity = request.get(IDENTITY) or Identity(None)
    token = state.config.token
    if token is not None and token.external:  # no policy here: the token decides
        return identity.claims is not None and identity.claims.covers(
            Access("repository", repository, frozenset({action}))
        )
    return action in state.config.policy.repository_actions(identity.user, repository)
