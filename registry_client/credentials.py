"""Registry credentials from a Docker client config (`docker login` writes the `auths` map)."""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path
from typing import Any

from registry_client.reference import DEFAULT_REGISTRY

_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")


def docker_config_path() -> Path:
    """$DOCKER_CONFIG/config.json, else ~/.docker/config.json."""
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def credentials_for(registry: str, config: dict[str, Any]) -> tuple[str, str] | None:
    """The (username, password) stored for `registry` in a parsed config.json, if any.
    Keys may be written as `host`, `https://host` or `https://host/v1/`, as docker does."""
    auths = config.get("auths")
    if not isinstance(auths, dict):
        return None
    wanted = set(_HUB_KEYS) if registry == DEFAULT_REGISTRY else {registry}
    for key, entry in auths.items():
        if not isinstance(entry, dict) or _host_of(key) not in {_host_of(w) for w in wanted}:
            continue
        found = _decode(entry)
        if found is not None:
            return found
    return None


def load_credentials(registry: str, path: Path | None = None) -> tuple[str, str] | None:
    """Credentials for `registry` from the Docker config file; None when absent or unreadable."""
    path = path or docker_config_path()
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return credentials_for(registry, config) if isinstance(config, dict) else None


def parse_user(value: str) -> tuple[str, str]:
    """`--user USER:PASSWORD` -> (user, password); the password may contain colons."""
    user, sep, password = value.partition(":")
    if not sep or not user:
        raise ValueError("expected USER:PASSWORD")
    return user, password


def _host_of(key: str) -> str:
    host = key.removeprefix("https://").removeprefix("http://")
    return host.split("/", 1)[0]


def _decode(entry: dict[str, Any]) -> tuple[str, str] | None:
    auth = entry.get("auth")
    if isinstance(auth, str) and auth:
        try:
            user, sep, password = base64.b64decode(auth).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return (user, password) if sep else None
    name, secret = entry.get("username"), entry.get("password")
    if isinstance(name, str) and isinstance(secret, str):
        return name, secret
    return None
