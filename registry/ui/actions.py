"""The forms: log in, log out, and delete a tag or a manifest (after a confirmation page).

Every POST carries the session's CSRF token, and a cross-origin POST is refused outright.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from typing import Final
from urllib.parse import quote, urlsplit

from aiohttp import web

from registry.auth import AUTH
from registry.auth.login import check_password
from registry.errcode import TOOMANYREQUESTS, RegistryError
from registry.http.keys import MANIFESTS
from registry.names import is_tag
from registry.ui.keys import NEW_SESSION, SESSION, SESSIONS, VIEWER
from registry.ui.render import PREFIX, page
from registry.ui.views import digest_in_url, visible_repository

log = logging.getLogger("berth.ui")

FORM_MAX: Final = 8192


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


async def checked_form(request: web.Request) -> Mapping[str, object]:
    """The posted form, if it came from one of our pages; else 403."""
    origin = request.headers.get("Origin")
    # The host only: behind a TLS-terminating proxy the scheme seen here is http.
    if origin is not None and urlsplit(origin).netloc != request.host:
        raise web.HTTPForbidden(text="This form was posted from another site.")
    if request.content_length is not None and request.content_length > FORM_MAX:
        raise web.HTTPRequestEntityTooLarge(FORM_MAX, request.content_length)
    form = await request.post()
    token = form.get("csrf")
    expected = request[SESSION].csrf
    if not isinstance(token, str) or not hmac.compare_digest(token, expected):
        raise web.HTTPForbidden(
            text="This form has expired or did not come from this site: reload the page and "
            "try again."
        )
    return form


def _safe_next(value: object) -> str:
    """Only a path under the UI: never another site."""
    if isinstance(value, str) and value.startswith(PREFIX + "/") and "//" not in value:
        return value
    return PREFIX + "/"


async def login_form(request: web.Request) -> web.Response:
    """GET /ui/login"""
    if not request[VIEWER].can_login:
        raise web.HTTPNotFound(text="This registry has no login here.")
    return page(request, "login.html", error="", next=_safe_next(request.query.get("next")))


async def login(request: web.Request) -> web.Response:
    """POST /ui/login: the same users, throttle and log lines as the API's Basic auth."""
    if not request[VIEWER].can_login:
        raise web.HTTPNotFound(text="This registry has no login here.")
    form = await checked_form(request)
    user, password = form.get("username"), form.get("password")
    target = _safe_next(form.get("next"))
    if not isinstance(user, str) or not isinstance(password, str) or not user:
        return page(
            request, "login.html", 400, error="Enter a user name and a password.", next=target
        )
    try:
        await check_password(request.config_dict[AUTH], request, user, password, {})
    except RegistryError as exc:
        status = exc.code.status
        error = (
            "Too many failed logins: wait a minute and try again."
            if exc.code is TOOMANYREQUESTS
            else "Incorrect user name or password."
        )
        return page(request, "login.html", status, error=error, next=target, username=user)
    request[NEW_SESSION] = request.app[SESSIONS].new(user)
    log.info("UI login: user %r from %s", user, request.remote)
    return see_other(target)


async def logout(request: web.Request) -> web.Response:
    """POST /ui/logout"""
    await checked_form(request)
    request[NEW_SESSION] = request.app[SESSIONS].new(None)
    return see_other(PREFIX + "/")


def _may_delete(request: web.Request, name: str) -> None:
    if not request[VIEWER].may_delete(name):
        raise web.HTTPForbidden(text=f"You may not delete in {name}.")


def _tag(request: web.Request) -> str:
    tag = request.match_info["tag"]
    if not is_tag(tag):
        raise web.HTTPNotFound(text="That is not a tag.")
    return tag


def _repository_url(name: str) -> str:
    return f"{PREFIX}/r/{quote(name)}"


async def confirm_delete_tag(request: web.Request) -> web.Response:
    """GET /ui/r/{name}/-/tags/{tag}/delete"""
    name, tag = visible_repository(request), _tag(request)
    _may_delete(request, name)
    stored = await request.config_dict[MANIFESTS].get(name, tag)
    return page(
        request,
        "confirm.html",
        name=name,
        what=f"tag {tag}",
        detail=f"The tag {name}:{tag} will be removed. The manifest {stored.digest} stays, "
        "with any other tags on it.",
        cancel=_repository_url(name),
    )


async def delete_tag(request: web.Request) -> web.Response:
    """POST /ui/r/{name}/-/tags/{tag}/delete"""
    name, tag = visible_repository(request), _tag(request)
    await checked_form(request)
    _may_delete(request, name)
    await request.config_dict[MANIFESTS].delete(name, tag)
    log.info("UI delete: tag %s:%s by %r", name, tag, request[VIEWER].user)
    return see_other(f"{_repository_url(name)}?deleted={quote(tag)}")


async def confirm_delete_manifest(request: web.Request) -> web.Response:
    """GET /ui/r/{name}/-/manifests/{digest}/delete"""
    name, digest = visible_repository(request), digest_in_url(request)
    _may_delete(request, name)
    await request.config_dict[MANIFESTS].get(name, digest)
    return page(
        request,
        "confirm.html",
        name=name,
        what=f"manifest {digest}",
        detail=f"The manifest {name}@{digest} will be removed, with every tag on it.",
        cancel=f"{_repository_url(name)}/-/manifests/{digest}",
    )


async def delete_manifest(request: web.Request) -> web.Response:
    """POST /ui/r/{name}/-/manifests/{digest}/delete"""
    name, digest = visible_repository(request), digest_in_url(request)
    await checked_form(request)
    _may_delete(request, name)
    await request.config_dict[MANIFESTS].delete(name, digest)
    log.info("UI delete: manifest %s@%s by %r", name, digest, request[VIEWER].user)
    return see_other(f"{_repository_url(name)}?deleted={quote(str(digest))}")
