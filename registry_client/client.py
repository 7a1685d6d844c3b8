"""An HTTP client for one registry (aiohttp): auth challenges, retries, manifests, blobs.

Auth follows the Docker token spec: a request goes out bare (or with what worked before for
the same scope); a 401 carries `WWW-Authenticate`, whose Basic challenge is answered with the
credentials and whose Bearer challenge with a token fetched from the realm for the scope, then
cached per scope until it expires. Retries cover connection errors, 429 and 5xx, with
exponential backoff that honours `Retry-After`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Final, TypeAlias

import aiohttp
import yarl

from blobstore import Digest
from registry_client import mediatypes
from registry_client.challenge import Challenge, parse_challenges, pull_scope, push_scope
from registry_client.errors import AuthenticationFailed, NotFound, RegistryError

MAX_MANIFEST_SIZE: Final = 4 * 1024 * 1024
# A request body: bytes, or a function that opens a new stream of them for each attempt.
Body: TypeAlias = bytes | Callable[[], AsyncIterable[bytes]]
_RETRY_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})
_TOKEN_MARGIN: Final = 10.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 0.2
    max_delay: float = 5.0

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after is not None and retry_after.isdigit():
            return min(float(retry_after), self.max_delay)
        return float(min(self.base_delay * 2.0**attempt, self.max_delay))


@dataclass(frozen=True, slots=True)
class ManifestHead:
    digest: Digest
    media_type: str | None
    size: int | None


class RegistryClient:
    """Talks to the registry at `host` ("host:port"). Owns no session: the caller does."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        host: str,
        *,
        plain_http: bool = False,
        credentials: tuple[str, str] | None = None,
        insecure: bool = False,
        retry: RetryPolicy | None = None,
    ) -> None:
        """`plain_http`: HTTP only. `insecure`: what Docker does for an insecure registry
        (localhost, 127.0.0.0/8): HTTPS without certificate checks, and HTTP if the HTTPS
        connection fails. Otherwise HTTPS with verified certificates."""
        self._session = session
        self._host = host
        self._base = f"{'http' if plain_http else 'https'}://{host}"
        self._insecure = insecure and not plain_http
        self._may_fall_back = self._insecure
        self._credentials = credentials
        self._retry = retry or RetryPolicy()
        self._challenge: Challenge | None = None
        self._tokens: dict[str, tuple[str, float]] = {}

    @property
    def retry(self) -> RetryPolicy:
        return self._retry

    async def get_manifest(self, repository: str, target: str) -> tuple[bytes, str | None]:
        """The raw manifest body and its Content-Type. The caller verifies its digest."""
        path = f"/v2/{repository}/manifests/{target}"
        async with self.request("GET", path, repository, {"Accept": mediatypes.ACCEPT}) as resp:
            if resp.content_length is not None and resp.content_length > MAX_MANIFEST_SIZE:
                raise RegistryError(f"manifest {repository}:{target} is larger than 4 MiB")
            body = bytearray()
            async for chunk in resp.content.iter_chunked(65536):
                body += chunk
                if len(body) > MAX_MANIFEST_SIZE:
                    raise RegistryError(f"manifest {repository}:{target} is larger than 4 MiB")
            return bytes(body), resp.headers.get("Content-Type")

    async def head_manifest(self, repository: str, target: str) -> ManifestHead:
        """What the registry serves for `target` without the body: digest, type and size.
        RegistryError when it sends no digest (a HEAD is only useful with one)."""
        path = f"/v2/{repository}/manifests/{target}"
        async with self.request("HEAD", path, repository, {"Accept": mediatypes.ACCEPT}) as resp:
            digest = resp.headers.get("Docker-Content-Digest")
            if not digest:
                raise RegistryError(f"HEAD {self._base}{path}: no Docker-Content-Digest")
            try:
                parsed = Digest.parse(digest)
            except ValueError:
                raise RegistryError(f"HEAD {self._base}{path}: bad digest {digest!r}") from None
            return ManifestHead(parsed, resp.headers.get("Content-Type"), resp.content_length)

    async def head_blob(self, repository: str, digest: Digest) -> int:
        """The blob's size, from a HEAD; NotFound when the repository does not have it."""
        path = f"/v2/{repository}/blobs/{digest}"
        async with self.request("HEAD", path, repository, {}) as resp:
            if resp.content_length is None:
                raise RegistryError(f"HEAD {self._base}{path}: no Content-Length")
            return resp.content_length

    @contextlib.asynccontextmanager
    async def get_blob(
        self, repository: str, digest: Digest, start: int = 0
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """The blob response, from byte `start` (status 206) or whole (200, the server may
        ignore Range)."""
        headers = {"Range": f"bytes={start}-"} if start else {}
        async with self.request(
            "GET", f"/v2/{repository}/blobs/{digest}", repository, headers
        ) as resp:
            yield resp

    async def check_login(self) -> None:
        """`GET /v2/` with the credentials, as `docker login` checks them (a Bearer token
        asked for without a scope); raises AuthenticationFailed when they are refused."""
        async with self.request("GET", "/v2/", "", {}):
            pass

    @contextlib.asynccontextmanager
    async def request(
        self,
        method: str,
        path: str,
        repository: str,
        headers: Mapping[str, str],
        *,
        scope: str | None = None,
        data: Body | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """Send with auth and retries; yields a 2xx response, raises RegistryError otherwise.
        `scope` is the token scope (default: pull of `repository`, none when that is "", as
        for the API root; several scopes are separated by spaces); `data` the request body:
        bytes, or a function returning a fresh stream of them for each attempt (send
        Content-Length with it). `path` may also be an absolute URL (an upload's Location)."""
        if scope is None:
            scope = pull_scope(repository) if repository else ""
        resp = await self._send(method, path, scope, headers, data)
        try:
            if resp.status >= 300:
                hint = (
                    "" if self._credentials else "; no credentials given (--user or docker login)"
                )
                await _raise_for(resp, f"{method} {self._url(path)}", hint)
            yield resp
        finally:
            resp.release()

    @contextlib.asynccontextmanager
    async def push_request(
        self,
        method: str,
        path: str,
        repository: str,
        headers: Mapping[str, str],
        *,
        data: Body | None = None,
        mount_from: str | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """`request` with the scope a push of `repository` needs (plus pull of `mount_from`
        for a cross-repository mount)."""
        async with self.request(
            method, path, repository, headers, scope=push_scope(repository, mount_from), data=data
        ) as resp:
            yield resp

    def _url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self._base + path

    async def _send(
        self,
        method: str,
        path: str,
        scope: str,
        headers: Mapping[str, str],
        data: Body | None = None,
    ) -> aiohttp.ClientResponse:
        authenticated_once = False
        attempt = 0
        while True:
            auth = await self._authorization(scope) if self._challenge else None
            sent = {**headers, **({"Authorization": auth} if auth else {})}
            try:
                resp = await self._session.request(
                    method,
                    self._url(path),
                    headers=sent,
                    data=data() if callable(data) else data,
                    ssl=not self._insecure,
                    allow_redirects=method in ("GET", "HEAD"),
                )
            except (TimeoutError, aiohttp.ClientConnectionError) as exc:
                if self._may_fall_back:
                    self._may_fall_back = False
                    self._base = f"http://{self._host}"
                    continue
                attempt += 1
                if attempt >= self._retry.attempts:
                    raise RegistryError(
                        f"{method} {self._url(path)}: {describe_error(exc)}"
                    ) from exc
                await asyncio.sleep(self._retry.delay(attempt))
                continue
            self._may_fall_back = False  # this scheme answered: keep it
            if resp.status == 401 and not authenticated_once:
                header = resp.headers.get("WWW-Authenticate", "")
                resp.release()
                self._learn(header, scope)
                self._tokens.pop(scope, None)
                authenticated_once = True
                continue
            if resp.status in _RETRY_STATUSES and attempt + 1 < self._retry.attempts:
                attempt += 1
                retry_after = resp.headers.get("Retry-After")
                resp.release()
                await asyncio.sleep(self._retry.delay(attempt, retry_after))
                continue
            return resp

    def _learn(self, header: str, scope: str) -> None:
        challenges = {c.scheme: c for c in parse_challenges(header)}
        chosen = challenges.get("bearer") or challenges.get("basic")
        if chosen is None:
            raise AuthenticationFailed(
                f"{self._base} demands authentication with an unsupported challenge {header!r}"
            )
        if chosen.scheme == "basic" and self._credentials is None:
            raise AuthenticationFailed(f"{self._base} demands credentials (--user or docker login)")
        self._challenge = chosen

    async def _authorization(self, scope: str) -> str | None:
        challenge = self._challenge
        assert challenge is not None
        if challenge.scheme == "basic":
            return _basic(self._credentials) if self._credentials else None
        cached = self._tokens.get(scope)
        if cached is not None and cached[1] > time.monotonic():
            return f"Bearer {cached[0]}"
        token, lifetime = await self._fetch_token(challenge, scope)
        self._tokens[scope] = (token, time.monotonic() + max(lifetime - _TOKEN_MARGIN, 1.0))
        return f"Bearer {token}"

    async def _fetch_token(self, challenge: Challenge, scope: str) -> tuple[str, float]:
        realm = challenge.params.get("realm")
        if not realm:
            raise AuthenticationFailed(f"{self._base}: Bearer challenge without a realm")
        query = [("scope", one) for one in scope.split()]
        if self._credentials:
            query.append(("account", self._credentials[0]))  # as docker sends it
        if "service" in challenge.params:
            query.append(("service", challenge.params["service"]))
        headers = {"Authorization": _basic(self._credentials)} if self._credentials else {}
        same_host = yarl.URL(realm).host == yarl.URL(self._base).host
        try:
            async with self._session.get(
                realm, params=query, headers=headers, ssl=not (self._insecure and same_host)
            ) as resp:
                text = await resp.text()
                if resp.status != 200:
                    refused = f"scope {scope!r}" if scope else "the credentials"
                    raise AuthenticationFailed(
                        f"token service {realm} refused {refused}: {resp.status} "
                        f"{text[:200].strip()}"
                    )
        except aiohttp.ClientError as exc:
            raise AuthenticationFailed(f"token service {realm}: {exc}") from exc
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise AuthenticationFailed(f"token service {realm} sent no JSON object")
        token = document.get("token") or document.get("access_token")
        if not isinstance(token, str) or not token:
            raise AuthenticationFailed(f"token service {realm} sent no token")
        lifetime = document.get("expires_in", 60)
        return token, float(lifetime) if isinstance(lifetime, int | float) else 60.0


def describe_error(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _basic(credentials: tuple[str, str] | None) -> str:
    assert credentials is not None
    raw = f"{credentials[0]}:{credentials[1]}".encode()
    return "Basic " + base64.b64encode(raw).decode()


async def _raise_for(resp: aiohttp.ClientResponse, what: str, auth_hint: str) -> None:
    detail = ""
    with contextlib.suppress(aiohttp.ClientError, ValueError, AttributeError):
        text = (await resp.content.read(65536)).decode()
        errors = json.loads(text).get("errors") or []
        detail = "; ".join(
            f"{e.get('code')}: {e.get('message')}" for e in errors if isinstance(e, dict)
        )
    message = f"{what}: {resp.status} {resp.reason or ''}".rstrip()
    if detail:
        message += f" ({detail})"
    if resp.status in (401, 403):
        raise AuthenticationFailed(message + auth_hint)
    if resp.status == 404:
        raise NotFound(message)
    raise RegistryError(message)
