"""Templates and the filters they use; `page()` renders one into a response."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote

from aiohttp import web
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from registry.ui.keys import TEMPLATES, VIEWER

PREFIX: Final = "/ui"
_UNITS: Final = ("B", "KB", "MB", "GB", "TB", "PB")


def templates() -> Environment:
    env = Environment(
        loader=PackageLoader("registry.ui", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["size"] = human_size
    env.filters["when"] = when
    env.filters["short"] = short_digest
    env.filters["duration"] = duration
    env.filters["path"] = lambda value: quote(str(value), safe="/:@")
    env.globals["prefix"] = PREFIX
    return env


def human_size(value: int | None) -> Markup:
    """Decimal units as docker prints them, with the exact byte count on hover."""
    if value is None:
        return Markup("&ndash;")
    size, unit = float(value), 0
    while size >= 1000 and unit < len(_UNITS) - 1:
        size, unit = size / 1000, unit + 1
    shown = f"{int(size)} B" if unit == 0 else f"{size:.1f} {_UNITS[unit]}"
    return Markup('<span title="{} bytes">{}</span>').format(f"{value:,}", shown)


def ago(then: datetime, now: datetime) -> str:
    seconds = int((now - then).total_seconds())
    if seconds < 60:
        return "just now"
    for unit, length in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= length:
            count = seconds // length
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"  # pragma: no cover


def when(value: datetime | None, never: str = "never") -> Markup:
    if value is None:
        return Markup('<span class="muted">{}</span>').format(never)
    exact = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        value.isoformat(), exact, ago(value, datetime.now(UTC))
    )


def duration(seconds: float) -> str:
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= length and seconds % length == 0:
            return f"{int(seconds // length)}{unit}"
    return f"{seconds:g}s"


def short_digest(digest: str) -> str:
    algorithm, _, encoded = digest.partition(":")
    return f"{algorithm}:{encoded[:12]}" if encoded else digest


def page(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    env = request.app[TEMPLATES]
    html = env.get_template(template).render(
        viewer=request.get(VIEWER), request_path=request.path_qs, **context
    )
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")
