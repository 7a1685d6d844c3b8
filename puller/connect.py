"""An HTTP session and a registry client for one registry, as pulls and pushes open them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aiohttp

from registry_client.client import RegistryClient
from registry_client.credentials import load_credentials
from registry_client.reference import Reference, default_plain_http


@contextlib.asynccontextmanager
async def registry_client(
    ref: Reference,
    *,
    plain_http: bool,
    credentials: tuple[str, str] | None,
    read_timeout: float = 60,
) -> AsyncIterator[RegistryClient]:
    """A client for `ref`'s registry: `credentials` or those docker config.json holds for
    it; loopback registries tried over HTTPS without certificate checks, then HTTP."""
    timeout = aiohttp.ClientTimeout(total=None, connect=30, sock_read=read_timeout)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        yield RegistryClient(
            session,
            ref.api_host,
            plain_http=plain_http,
            insecure=default_plain_http(ref.registry),
            credentials=credentials or load_credentials(ref.registry),
        )
