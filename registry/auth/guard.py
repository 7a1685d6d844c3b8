"""The middleware in front of the registry API: who is calling, and may they do this.

Distribution's semantics: 401 UNAUTHORIZED with a `WWW-Authenticate` challenge when the
caller must (re)authenticate or fetch a token carrying the needed scope; 403 DENIED when an
authenticated user asks for what the access policy does not give them, since no new token
could help. Anonymous callers may do without a token whatever the policy grants anonymous.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from registry.auth.login import login
from registry.auth.scope import Access, format_scope, required_access
from registry.auth.state import IDENTITY, AuthState, Identity
from registry.auth.tokens import InvalidToken
from registry.errcode import DENIED, UNAUTHORIZED, RegistryError

__all__ = ["auth_middleware", "challenge", "permits"]

log = logging.getLogger("berth.auth")


def challenge(
    state: AuthState, request: web.Request, required: Sequence[Access], error: str | None = None
) -> dict[str, str]:
    """The `WWW-Authenticate` header asking for what `required` needs."""
    token = state.config.token
    if token is None:
        return {"WWW-Authenticate": f'Basic realm="{state.config.basic_realm}"'}
    realm = token.realm or f"{request.scheme}://{request.host}/auth/token"
    params = [f'realm="{realm}"', f'service="{token.service}"']
    scope = format_scope(required)
    if scope:
        params.append(f'scope="{scope}"')
    if error:
        params.append(f'error="{error}"')
    return {"WWW-Authenticate": "Bearer " + ",".join(params)}


def _detail(required: Sequence[Access]) -> list[dict[str, str]] | None:
    return [
        {"Type": a.type, "Name": a.name, "Action": action}
        for a in required
        for action in sorted(a.actions)
    ] or None


def permits(state: AuthState, identity: Identity, access: Access) -> bool:
    """Whether the caller holds `access`: its token's claim, else the policy."""
    if identity.claims is not None:
        return identity.claims.covers(access)
    return _policy_allows(state, identity.user, access)


def _policy_allows(state: AuthState, user: str | None, access: Access) -> bool:
    """All of `access`'s actions, not just some."""
    return state.config.policy.grant(user, [access]) == [access]


async def _authenticate(
    state: AuthState, request: web.Request, required: Sequence[Access]
) -> Identity:
    header = request.headers.get("Authorization")
    if header is None:
        return Identity(None)
    scheme, _, credentials = header.partition(" ")
    if state.verifier is None:
        if scheme.lower() != "basic":
            raise RegistryError(UNAUTHORIZED, headers=challenge(state, request, required))
        return Identity(await login(state, request, header, challenge(state, request, required)))
    if scheme.lower() != "bearer":
        raise RegistryError(
            UNAUTHORIZED,
            message="a bearer token is required",
            headers=challenge(state, request, required),
        )
    try:
        claims = state.verifier.verify(credentials.strip())
    except InvalidToken as exc:
        log.info("refused token from %s: %s", request.remote, exc)
        raise RegistryError(
            UNAUTHORIZED,
            message=f"invalid token: {exc}",
            headers=challenge(state, request, required, "invalid_token"),
        ) from exc
    return Identity(claims.subject or None, claims)


def _authorize(
    state: AuthState, request: web.Request, identity: Identity, required: Sequence[Access]
) -> None:
    if not required:  # /v2/: any authenticated caller, or any valid token
        if identity.user is None and identity.claims is None:
            raise RegistryError(UNAUTHORIZED, headers=challenge(state, request, required))
        return
    if all(permits(state, identity, access) for access in required):
        return
    token = state.config.token
    policy_decides = token is None or not token.external
    if (
        identity.user is not None
        and policy_decides
        and not all(_policy_allows(state, identity.user, access) for access in required)
    ):
        log.info("denied %s %s to user %r", request.method, request.path, identity.user)
        raise RegistryError(DENIED, detail=_detail(required))
    error = "insufficient_scope" if identity.claims is not None else None
    raise RegistryError(
        UNAUTHORIZED, detail=_detail(required), headers=challenge(state, request, required, error)
    )


def auth_middleware(state: AuthState) -> Middleware:
    """Guard every `/v2` request; other paths (the token endpoint) pass through."""

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        required = required_access(request.method, request.path)
        if required is None:
            return await handler(request)
        name = request.match_info.get("name")
        if name is not None and required and required[0].name != name:
            # Authorize exactly the repository the handler will act on.
            required = (Access("repository", name, required[0].actions),)
        identity = await _authenticate(state, request, required)
        _authorize(state, request, identity, required)
        request[IDENTITY] = identity
        return await handler(request)

    return auth
