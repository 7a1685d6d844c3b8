"""Typed keys for what the UI stores on its application and on each request."""

from __future__ import annotations

from aiohttp import web
from jinja2 import Environment

from registry.ui.session import Session, SessionCodec
from registry.ui.viewer import Viewer

SESSIONS = web.AppKey("berth.ui.sessions", SessionCodec)
TEMPLATES = web.AppKey("berth.ui.templates", Environment)
SESSION = web.RequestKey("berth.ui.session", Session)
VIEWER = web.RequestKey("berth.ui.viewer", Viewer)
NEW_SESSION = web.RequestKey("berth.ui.new_session", Session)  # to send as the cookie
