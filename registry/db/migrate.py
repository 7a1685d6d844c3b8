"""Apply the Alembic migrations shipped in the `migrations` package to a database URL."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig

import migrations


def alembic_config(url: str) -> AlembicConfig:
    """An Alembic config pointing at the installed `migrations` package (works from a wheel
    and from the checkout). The URL travels in `attributes`, not the ini, so '%' is safe."""
    location = Path(migrations.__file__).parent
    cfg = AlembicConfig(str(location / "alembic.ini"))
    cfg.set_main_option("script_location", str(location))
    cfg.attributes["url"] = url
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` to `revision`. Creates a SQLite file if needed."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    cfg = alembic_config(url)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        command.upgrade(cfg, revision)
        return
    # Called from async code: Alembic's env runs its own event loop, so give it a thread.
    errors: list[BaseException] = []

    def run() -> None:
        try:
            command.upgrade(cfg, revision)
        except BaseException as exc:  # noqa: BLE001  (re-raised in the caller's thread)
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
