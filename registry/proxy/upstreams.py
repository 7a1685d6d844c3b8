"""Which upstream a repository name comes from, and the client that talks to it.

`proxy.upstreams` maps name prefixes to upstream registries: `PREFIX/REST` is fetched from
that upstream as `REST`. `proxy.remoteurl` mirrors one registry for every name under no prefix,
as CNCF Distribution's proxy does; Docker Hub's single names are `library/NAME` there. A name
that no upstream claims is a local repository.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import aiohttp
import yarl

from registry.config import ProxyConfig
from registry_client.client import RegistryClient, RetryPolicy
from registry_client.credentials import credentials_for
from registry_client.reference import DEFAULT_REGISTRY, DOCKER_HUB_API_HOST

# Fail over to stale content quickly: a few fast retries, not the puller's patient ones.
UPSTREAM_RETRY: Final = RetryPolicy(attempts=3, base_delay=0.1, max_delay=1.0)


@dataclass(frozen=True, slots=True)
class Upstream:
    """One upstream registry. `prefix` is "" for the whole-registry mirror."""

    prefix: str
    url: str  # scheme://host[:port], for messages
    host: str
    client: RegistryClient
    ttl: float  # seconds a cached tag is served before it is revalidated
    docker_hub: bool

    @property
    def label(self) -> str:
        return f"{self.prefix or '(mirror)'} -> {self.url}"


@dataclass(frozen=True, slots=True)
class Route:
    """A repository served from an upstream: `name` here is `remote` there."""

    name: str
    upstream: Upstream
    remote: str


class Upstreams:
    """Routes repository names to upstreams; holds one RegistryClient (and token cache) each."""

    def __init__(self, config: ProxyConfig, session: aiohttp.ClientSession) -> None:
        docker_config = _read_docker_config(config.dockerconfig)

        def upstream(prefix: str, url: str, username: str, password: str, ttl: float) -> Upstream:
            parsed = yarl.URL(url)
            host = parsed.raw_authority
            credentials = (username, password) if username else None
            if credentials is None and docker_config is not None:
                hub = parsed.host == DOCKER_HUB_API_HOST
                credentials = credentials_for(DEFAULT_REGISTRY if hub else host, docker_config)
            client = RegistryClient(
                session,
                host,
                plain_http=parsed.scheme == "http",
                credentials=credentials,
                retry=UPSTREAM_RETRY,
            )
            base = f"{parsed.scheme}://{host}"
            return Upstream(prefix, base, host, client, ttl, parsed.host == DOCKER_HUB_API_HOST)

        self._prefixed = [
            upstream(u.prefix, u.remoteurl, u.username, u.password, u.ttl)
            for u in config.upstreams  # prefixes never overlap (checked in the config)
        ]
        self._mirror = (
            upstream("", config.remoteurl, config.username, config.password, config.ttl)
            if config.remoteurl
            else None
        )

    @property
    def mirror(self) -> Upstream | None:
        return self._mirror

    def route(self, name: str) -> Route | None:
        """The upstream `name` comes from, or None for a local repository."""
        for upstream in self._prefixed:
            if name.startswith(upstream.prefix + "/"):
                return Route(name, upstream, name[len(upstream.prefix) + 1 :])
        if self._mirror is None:
            return None
        remote = name
        if self._mirror.docker_hub and "/" not in name:
            remote = f"library/{name}"
        return Route(name, self._mirror, remote)


def _read_docker_config(path: str) -> dict[str, object] | None:
    if not path:
        return None
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None  # checked when the configuration was loaded; gone since: no credentials
    return document if isinstance(document, dict) else None
