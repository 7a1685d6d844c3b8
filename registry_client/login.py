"""`docker login`/`docker logout`: credentials checked against the registry, then kept in (or
removed from) the Docker client config, `auths.<server>.auth` = base64(user:password), in a
file only its owner may read. The puller and docker/skopeo/podman read them back from there."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from registry_client.credentials import docker_config_path
from registry_client.errors import ClientError
from registry_client.reference import DEFAULT_REGISTRY, DOCKER_HUB_API_HOST, default_plain_http

HUB_KEY = "https://index.docker.io/v1/"  # where docker keeps Docker Hub's credentials
_HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io", HUB_KEY)


class LoginError(ClientError):
    """Config or server trouble that stops a login or logout; the message says which."""


def server_key(server: str | None) -> str:
    """The config.json key docker uses: the bare host[:port], or Docker Hub's v1 URL."""
    if not server or server in _HUB_ALIASES:
        return HUB_KEY
    host = server.removeprefix("https://").removeprefix("http://").split("/", 1)[0]
    if not host:
        raise LoginError(f"invalid registry address: {server!r}")
    return HUB_KEY if host in _HUB_ALIASES else host


def api_host(key: str) -> str:
    return DOCKER_HUB_API_HOST if key == HUB_KEY else key


async def check_credentials(key: str, username: str, password: str) -> None:
    """Raises AuthenticationFailed (refused) or RegistryError (unreachable, other errors)."""
    import aiohttp

    from registry_client.client import RegistryClient

    host = api_host(key)
    timeout = aiohttp.ClientTimeout(total=None, connect=30, sock_read=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        client = RegistryClient(
            session,
            host,
            insecure=default_plain_http(DEFAULT_REGISTRY if key == HUB_KEY else host),
            credentials=(username, password),
        )
        await client.check_login()


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise LoginError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        config = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise LoginError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise LoginError(f"{path} is not a JSON object")
    return config


def _write(path: Path, config: dict[str, Any]) -> None:
    """Atomically, mode 0600 (the directory 0700 when made), as docker writes it."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".config.json.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(config, f, indent="\t")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _helper(config: dict[str, Any], key: str) -> str | None:
    helpers = config.get("credHelpers")
    named = helpers.get(key) if isinstance(helpers, dict) else None
    store = config.get("credsStore")
    return str(named or store) if (named or store) else None


def store_credentials(key: str, username: str, password: str, path: Path | None = None) -> Path:
    path = path or docker_config_path()
    config = _read(path)
    helper = _helper(config, key)
    if helper:
        raise LoginError(
            f"{path} hands credentials to the helper docker-credential-{helper}, "
            "which Berth does not run"
        )
    auths = config.setdefault("auths", {})
    if not isinstance(auths, dict):
        raise LoginError(f"{path}: 'auths' is not a JSON object")
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    auths[key] = {**(auths.get(key) or {}), "auth": token}
    for stale in ("username", "password", "identitytoken"):
        auths[key].pop(stale, None)
    _write(path, config)
    return path


def erase_credentials(key: str, path: Path | None = None) -> bool:
    """Remove the server's entry (under any spelling docker uses for it); False if none."""
    path = path or docker_config_path()
    config = _read(path)
    auths = config.get("auths")
    if not isinstance(auths, dict):
        return False
    matches = [k for k in auths if server_key(k) == key]
    for k in matches:
        del auths[k]
    if matches:
        _write(path, config)
    return bool(matches)
