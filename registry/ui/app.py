"""The UI sub-application: routes, and the middleware every page goes through.

The middleware reads the session cookie, decides who the viewer is, renders any error as an
HTML page (the registry's JSON error middleware only ever sees a finished response), sends
the session cookie when it changed, and says in `Server-Timing` how long the page took.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler

from registry.auth import AUTH
from registry.config import Config
from registry.errcode import RegistryError
from registry.http.keys import CONFIG, DATABASE, HTTP_SECRET
from registry.shared_secret import derive
from registry.ui import actions, views
from registry.ui.keys import NEW_SESSION, SESSION, SESSIONS, TEMPLATES, VIEWER
from registry.ui.render import PREFIX, page, templates
from registry.ui.session import COOKIE, MAX_AGE, PURPOSE, Session, SessionCodec
from registry.ui.usage import keep_usage_fresh
from registry.ui.viewer import login_enabled, make_viewer

log = logging.getLogger("berth.ui")

STATIC: Final = Path(__file__).with_name("static")
STATIC_PREFIX: Final = PREFIX + "/static/"
_NAME: Final = "{name:.+}"
_DIGEST: Final = "{digest:[a-z0-9+._-]+:[a-zA-Z0-9=_-]+}"
_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def ui_app() -> web.Application:
    ui = web.Application(middlewares=[_ui_middleware])
    ui[TEMPLATES] = templates()
    ui.router.add_static("/static", STATIC)
    ui.add_routes(
        [
            web.get("/", views.repositories),
            web.get("/storage", views.storage),
            web.get("/login", actions.login_form),
            web.post("/login", actions.login),
            web.post("/logout", actions.logout),
            web.get(f"/r/{_NAME}/-/manifests/{_DIGEST}", views.manifest),
            web.get(f"/r/{_NAME}/-/manifests/{_DIGEST}/delete", actions.confirm_delete_manifest),
            web.post(f"/r/{_NAME}/-/manifests/{_DIGEST}/delete", actions.delete_manifest),
            web.get(f"/r/{_NAME}/-/tags/{{tag}}/delete", actions.confirm_delete_tag),
            web.post(f"/r/{_NAME}/-/tags/{{tag}}/delete", actions.delete_tag),
            web.get(f"/r/{_NAME}", views.repository),  # last: {name} would swallow the others
        ]
    )
    return ui


def _session(request: web.Request) -> tuple[Session, bool]:
    """The request's session, and whether it is new (so the cookie must be sent)."""
    codec = request.app[SESSIONS]
    session = codec.decode(request.cookies.get(COOKIE, ""))
    if session is None:
        return codec.new(), True
    state = request.config_dict.get(AUTH)
    if session.user is not None and (
        not login_enabled(state)
        or state is None
        or state.htpasswd is None
        or session.user not in state.htpasswd.users()
    ):
        return codec.new(), True  # the user was removed, or login turned off, since
    return session, False


@web.middleware
async def _ui_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(STATIC_PREFIX):
        return await handler(request)
    started, cpu = time.perf_counter(), time.thread_time()
    session, fresh = _session(request)
    if fresh:
        request[NEW_SESSION] = session
    request[SESSION] = session
    request[VIEWER] = make_viewer(
        request.config_dict.get(AUTH),
        session.user,
        session.csrf,
        delete_enabled=request.config_dict[CONFIG].storage.delete.enabled,
    )
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = _error(request, exc.status, exc.reason, exc.text or "")
    except RegistryError as exc:
        response = _error(request, exc.code.status, exc.code.message, _message(exc))
    except Exception:
        log.exception("UI error in %s %s", request.method, request.path)
        response = _error(request, 500, "Internal Server Error", "Something went wrong.")
    new = request.get(NEW_SESSION)
    if new is not None:
        response.set_cookie(
            COOKIE,
            request.app[SESSIONS].encode(new),
            max_age=MAX_AGE,
            path=PREFIX + "/",
            httponly=True,
            samesite="Lax",
            secure=request.secure,
        )
    for name, value in _HEADERS.items():
        response.headers.setdefault(name, value)
    # Wall time, and the CPU time this thread spent (on SQLite, the queries too): on a busy
    # machine the first includes waiting for a CPU, the second does not.
    response.headers["Server-Timing"] = (
        f"app;dur={(time.perf_counter() - started) * 1000:.1f}, "
        f"cpu;dur={(time.thread_time() - cpu) * 1000:.1f}"
    )
    return response


def _message(exc: RegistryError) -> str:
    return exc.message + (f" ({exc.detail})" if exc.detail else "")


def _error(request: web.Request, status: int, reason: str, text: str) -> web.Response:
    if text.startswith(f"{status}: "):  # aiohttp's default body for a bare HTTPException
        text = ""
    return page(request, "error.html", status, status_code=status, reason=reason, message=text)


async def _to_ui(_request: web.Request) -> web.Response:
    return web.Response(status=308, headers={"Location": PREFIX + "/"})


def _ui_resources(ui: web.Application) -> Callable[[web.Application], AsyncIterator[None]]:
    """What the UI needs of the registry's resources, once they exist (the shared secret,
    the database), for the registry `app`."""

    async def resources(app: web.Application) -> AsyncIterator[None]:
        ui[SESSIONS] = SessionCodec(derive(app[HTTP_SECRET], PURPOSE))
        async with _usage_snapshots(app):
            yield

    return resources


@contextlib.asynccontextmanager
async def _usage_snapshots(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(
        keep_usage_fresh(app[DATABASE], app[CONFIG].ui.usage.interval), name="ui-usage"
    )
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def install(app: web.Application, config: Config) -> None:
    """Serve the UI at /ui/ of `app` (after the registry's resources exist: call it last)."""
    app.router.add_get(PREFIX, _to_ui)
    ui = ui_app()
    app.add_subapp(PREFIX + "/", ui)
    app.cleanup_ctx.append(_ui_resources(ui))
