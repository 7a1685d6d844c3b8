"""Helpers for the auth end-to-end tests: a `berth serve` with an `auth` section, users, a
docker config per test, and tokens fetched the way clients fetch them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

from registry.auth.htpasswd import set_password
from tests.support.clients import run
from tests.support.server import RunningServer, start_berth

IMAGE_PREFIX = "berth-auth-e2e"
USERS = {"alice": "alice-secret-pw", "puller": "puller-secret-pw", "admin": "admin-secret-pw"}
# alice may do everything under authe2e/; puller may only pull there; anyone may pull public/*.
ACCESS: list[dict[str, Any]] = [
    {"users": ["alice"], "repositories": ["authe2e/**"], "actions": ["pull", "push", "delete"]},
    {"users": ["puller"], "repositories": ["authe2e/**"], "actions": ["pull"]},
    {"users": ["anonymous"], "repositories": ["authe2e/public/*"], "actions": ["pull"]},
]


def write_users(path: Path) -> Path:
    for user, password in USERS.items():
        set_password(path, user, password, cost=5)
    return path


def write_config(base: Path, extra: dict[str, Any] | None = None) -> Path:
    config = {
        "version": "0.1",
        "auth": {
            "htpasswd": {"realm": "Berth e2e", "path": str(write_users(base / "htpasswd"))},
            "admins": ["admin"],
            "access": ACCESS,
        },
        **(extra or {}),
    }
    path = base / "config.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def start_auth_server(base: Path) -> RunningServer:
    base.mkdir(parents=True, exist_ok=True)
    return start_berth(base / "data", extra_args=["--config", str(write_config(base))])


def get_token(base_url: str, user: str | None, *scopes: str) -> str:
    auth = (user, USERS[user]) if user else None
    resp = requests.get(
        f"{base_url}/auth/token", params=[("scope", s) for s in scopes], auth=auth, timeout=30
    )
    resp.raise_for_status()
    return str(resp.json()["token"])


def manifest_status(server: RunningServer, repo: str, ref: str) -> int:
    token = get_token(server.url, "admin", f"repository:{repo}:pull")
    resp = requests.get(
        f"{server.url}/v2/{repo}/manifests/{ref}",
        timeout=30,
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.docker.distribution.manifest.v2+json",
        },
    )
    return resp.status_code


@dataclass
class Docker:
    """The docker CLI with its own DOCKER_CONFIG; remembers the tags it made."""

    config_dir: Path
    tags: list[str] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {"DOCKER_CONFIG": str(self.config_dir)}

    def __call__(self, *args: str, check: bool = True, stdin: str | None = None) -> Any:
        return run(["docker", *args], env=self.env, check=check, input_text=stdin, timeout=300)

    def login(self, host: str, user: str, password: str, check: bool = True) -> Any:
        return self(
            "login", "-u", user, "--password-stdin", host, check=check, stdin=password + "\n"
        )

    def tag(self, source: str, target: str) -> str:
        self("tag", source, target)
        self.tags.append(target)
        return target

    def credentials(self) -> dict[str, Any]:
        return dict(json.loads((self.config_dir / "config.json").read_text())["auths"])

    def cleanup(self) -> None:
        if self.tags:
            run(["docker", "rmi", "-f", *self.tags], check=False)


def docker_for(tmp_path: Path) -> Iterator[Docker]:
    config_dir = tmp_path / f"docker-config-{uuid.uuid4().hex[:6]}"
    config_dir.mkdir()
    docker = Docker(config_dir)
    yield docker
    docker.cleanup()
