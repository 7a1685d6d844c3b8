"""The built-in token service: `GET /auth/token` (Docker token spec, Basic credentials or
none) and `POST /auth/token` (OAuth2 password grant). It grants the intersection of the
requested scopes with what the access policy allows; asking for more is not an error.
No refresh tokens are issued, so clients keep their credentials and ask again."""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from registry.auth.login import check_password, login
from registry.auth.scope import ScopeError, format_scope, merge, parse_scope
from registry.auth.state import AUTH, AuthState
from registry.names import is_repository_name

__all__ = ["TOKEN_PATH", "add_token_routes"]

TOKEN_PATH = "/auth/token"


def _oauth_error(error: str, description: str, status: int = 400) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)


async def _issue(
    state: AuthState,
    request: web.Request,
    user: str | None,
    scopes: Iterable[str],
    service: str | None,
    oauth: bool,
) -> web.Response:
    assert state.issuer is not None
    assert state.config.token is not None
    if service is not None and service != state.config.token.service:
        return _oauth_error("invalid_request", f"unknown service {service!r}")
    try:
        requested = merge(access for scope in scopes for access in parse_scope(scope))
    except ScopeError as exc:
        return _oauth_error("invalid_scope", str(exc))
    for access in requested:
        if access.type == "repository" and not is_repository_name(access.name):
            return _oauth_error("invalid_scope", f"invalid repository name {access.name!r}")
    granted = state.config.policy.grant(user, requested)
    issued = state.issuer.issue(user or "", granted)
    body: dict[str, object] = {
        "token": issued.token,
        "access_token": issued.token,
        "expires_in": issued.expires_in,
        "issued_at": issued.issued_at,
    }
    if oauth:
        body["scope"] = format_scope(granted)
    return web.json_response(body, headers={"Cache-Control": "no-store"})


async def get_token(request: web.Request) -> web.Response:
    state = request.app[AUTH]
    header = request.headers.get("Authorization")
    user = None
    if header is not None:
        realm = {"WWW-Authenticate": f'Basic realm="{state.config.basic_realm}"'}
        user = await login(state, request, header, realm)
    return await _issue(
        state,
        request,
        user,
        request.query.getall("scope", []),
        request.query.get("service"),
        oauth=False,
    )


async def post_token(request: web.Request) -> web.Response:
    state = request.app[AUTH]
    form = await request.post()
    grant_type = form.get("grant_type")
    if grant_type != "password":
        return _oauth_error(
            "unsupported_grant_type", "only the password grant is supported (no refresh tokens)"
        )
    user, password = form.get("username"), form.get("password")
    if not isinstance(user, str) or not isinstance(password, str) or not user:
        return _oauth_error("invalid_request", "username and password are required")
    realm = {"WWW-Authenticate": f'Basic realm="{state.config.basic_realm}"'}
    await check_password(state, request, user, password, realm)
    scope = form.get("scope")
    service = form.get("service")
    return await _issue(
        state,
        request,
        user,
        [scope] if isinstance(scope, str) else [],
        service if isinstance(service, str) else None,
        oauth=True,
    )


def add_token_routes(app: web.Application) -> None:
    app.router.add_get(TOKEN_PATH, get_token)
    app.router.add_post(TOKEN_PATH, post_token)
