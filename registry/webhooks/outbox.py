"""The outbox: webhook events written in the same transaction as the change they report.

Services call the `Outbox` inside their write transaction (`await outbox.manifest_pushed(conn,
...)`), so an event exists exactly when its change committed, whatever happens to the process
afterwards. One row is written per endpoint that wants the event (`ignore.actions`,
`ignore.mediatypes`); none at all when no endpoint does. Pulls, which change nothing, are the
exception: registry.webhooks.pull_events notes them and writes them in batches, off the
response path. The dispatcher delivers the rows and marks them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Final

from sqlalchemy import insert

from registry.auth.state import IDENTITY
from registry.config import EndpointConfig
from registry.db import WriteConnection
from registry.db.models import utcnow, webhook_outbox
from registry.request_context import CURRENT_REQUEST, REQUEST_ID
from registry.webhooks.events import BLOB_MEDIA_TYPE, RequestRecord, Target, dumps, make_event
from registry.webhooks.pull_events import PullEvents

_INSERT: Final = insert(webhook_outbox)


class Outbox:
    def __init__(
        self, endpoints: Sequence[EndpointConfig] = (), source: dict[str, str] | None = None
    ):
        self._endpoints = tuple(e for e in endpoints if not e.disabled)
        self._source = source or {}
        self.pulls = PullEvents()

    def wants(self, action: str, media_type: str | None = None) -> bool:
        return any(e.wants(action, media_type) for e in self._endpoints)

    async def manifest_pushed(
        self,
        conn: WriteConnection,
        repo: str,
        digest: str,
        media_type: str,
        size: int,
        tags: Sequence[str],
    ) -> None:
        """One push event per tag (Distribution's), or one without a tag for a push by digest."""
        target = Target(repo, digest, media_type, size, url=_url(repo, "manifests", digest))
        for tag in dict.fromkeys(tags) or [""]:
            await self.record(conn, "push", replace(target, tag=tag))

    async def manifest_deleted(self, conn: WriteConnection, repo: str, digest: str) -> None:
        await self.record(conn, "delete", Target(repo, digest))

    async def tag_deleted(self, conn: WriteConnection, repo: str, tag: str) -> None:
        await self.record(conn, "delete", Target(repo, tag=tag))

    def manifest_pulled(
        self, repo: str, digest: str, media_type: str, size: int, tag: str = ""
    ) -> None:
        """Noted for registry.webhooks.pull_events to write, when an endpoint wants pulls."""
        if not self.wants("pull", media_type):
            return
        target = Target(repo, digest, media_type, size, tag, _url(repo, "manifests", digest))
        self._note_pull(target)

    def blob_pulled(self, repo: str, digest: str, size: int) -> None:
        """Noted for registry.webhooks.pull_events to write, when an endpoint wants pulls."""
        if not self.wants("pull", BLOB_MEDIA_TYPE):
            return
        url = _url(repo, "blobs", digest)
        self._note_pull(Target(repo, digest, BLOB_MEDIA_TYPE, size, url=url))

    def _note_pull(self, target: Target) -> None:
        request = current_request()
        if self.pulls.seen(target.repository, f"{target.digest}:{target.tag}", request.user):
            return
        self.pulls.add(self._rows("pull", target, request))

    async def blob_pushed(self, conn: WriteConnection, repo: str, digest: str, size: int) -> None:
        url = _url(repo, "blobs", digest)
        await self.record(conn, "push", Target(repo, digest, BLOB_MEDIA_TYPE, size, url=url))

    async def blob_mounted(
        self, conn: WriteConnection, repo: str, digest: str, size: int, source: str
    ) -> None:
        url = _url(repo, "blobs", digest)
        target = Target(repo, digest, BLOB_MEDIA_TYPE, size, url=url, from_repository=source)
        await self.record(conn, "mount", target)

    async def blob_deleted(self, conn: WriteConnection, repo: str, digest: str) -> None:
        await self.record(conn, "delete", Target(repo, digest))

    async def record(self, conn: WriteConnection, action: str, target: Target) -> None:
        await self.pulls.write(conn)  # noted earlier: delivered before this event
        rows = self._rows(action, target)
        if rows:
            await conn.execute(_INSERT, rows)

    def _rows(
        self, action: str, target: Target, request: RequestRecord | None = None
    ) -> list[dict[str, Any]]:
        """The outbox rows of one event: one per endpoint that wants it. The request is read
        only then: without endpoints, describing it cost a small push 2% of its CPU."""
        endpoints = [e.name for e in self._endpoints if e.wants(action, target.media_type or None)]
        if not endpoints:
            return []
        if request is None:
            request = current_request()
        if target.url:
            target = replace(target, url=f"{request.scheme}://{request.host}{target.url}")
        event = make_event(action, target, request, self._source)
        payload = dumps(event)
        now = utcnow()
        return [
            {
                "endpoint": endpoint,
                "event_id": event["id"],
                "action": action,
                "repository": target.repository,
                "payload": payload,
                "created_at": now,
                "attempts": 0,
            }
            for endpoint in endpoints
        ]


def current_request() -> RequestRecord:
    """The request being handled, as events describe it (empty outside a request)."""
    request = CURRENT_REQUEST.get()
    if request is None:
        return RequestRecord()
    identity = request.get(IDENTITY)
    return RequestRecord(
        id=request.get(REQUEST_ID, ""),
        addr=request.remote or "",
        host=request.host,
        method=request.method,
        useragent=request.headers.get("User-Agent", ""),
        scheme=request.scheme,
        user=identity.user or "" if identity is not None else "",
    )


def _url(repo: str, kind: str, digest: str) -> str:
    return f"/v2/{repo}/{kind}/{digest}"
