"""The secret that signs UI sessions: `http.secret`, or one generated per data directory.

Replicas must share `http.secret` so that any of them accepts a session another signed. On a
single host the workers share the data directory instead: the first to start writes a random
secret to `<datadir>/http-secret` (created whole, then linked into place, so no worker ever
reads a half-written file) and the others read it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Final

from registry.config import ConfigError

SECRET_FILE: Final = "http-secret"


def http_secret(configured: str, data_dir: Path) -> bytes:
    if configured:
        return configured.encode()
    path = data_dir / SECRET_FILE
    with contextlib.suppress(FileNotFoundError):
        return _read(path)
    data_dir.mkdir(parents=True, exist_ok=True)
    temp = data_dir / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):  # another worker was first: use theirs
            os.link(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return _read(path)


def _read(path: Path) -> bytes:
    value = path.read_text().strip()
    if not value:
        raise ConfigError(f"http.secret: {path} is empty: delete it or set http.secret")
    return value.encode()
