"""Checking a user's password, throttled per client address, with nothing secret logged."""

from __future__ import annotations

import logging

from aiohttp import web

from registry.auth.state import AuthState, basic_credentials
from registry.errcode import TOOMANYREQUESTS, UNAUTHORIZED, RegistryError
from registry.forwarded import client_address

__all__ = ["check_password", "login"]

log = logging.getLogger("berth.auth")


async def check_password(
    state: AuthState, request: web.Request, user: str, password: str, challenge: dict[str, str]
) -> str:
    """`user` if the password is right; RegistryError 401 if not, 429 while throttled."""
    client = client_address(request, state.trusted_proxies)
    retry = await state.limiter.retry_after(client)
    if retry is not None:
        log.warning("login throttled: client %s, user %r", client, user)
        raise RegistryError(
            TOOMANYREQUESTS,
            message="too many failed logins, retry later",
            headers={"Retry-After": str(retry)},
        )
    if state.htpasswd is not None and await state.htpasswd.verify(user, password):
        return user
    await state.limiter.failed(client)
    log.warning("failed login: client %s, user %r", client, user)
    raise RegistryError(UNAUTHORIZED, message="incorrect username or password", headers=challenge)


async def login(
    state: AuthState, request: web.Request, header: str, challenge: dict[str, str]
) -> str:
    """The user named by an `Authorization: Basic` header value."""
    credentials = basic_credentials(header)
    if credentials is None:
        raise RegistryError(UNAUTHORIZED, message="malformed Basic credentials", headers=challenge)
    return await check_password(state, request, *credentials, challenge)
