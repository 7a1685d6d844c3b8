"""Authentication and authorization for the registry API.

The registry core calls exactly two things from here:

- `install(app, config, data_dir)` from `create_app`, once, before the app starts. It adds
  whatever the `auth` config section asks for (middleware, the token endpoint). With an empty
  section the registry is open, as CNCF Distribution is without `auth`.
- `allowed(request, repository, action)` where a handler must decide per repository rather
  than per request: filtering `_catalog`, and whether a cross-repository mount may read the
  source repository (otherwise the mount falls back to an ordinary upload).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

__all__ = ["allowed", "install"]


def install(app: web.Application, config: Mapping[str, Any], data_dir: Path) -> None:
    """Add authentication to `app` as the `auth` config section asks."""
    if config:
        raise ValueError(f"auth: unsupported configuration {sorted(config)}")


def allowed(request: web.Request, repository: str, action: str) -> bool:
    """Whether the caller of `request` may `action` ("pull", "push", "delete") `repository`."""
    return True
