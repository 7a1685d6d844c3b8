"""Deliver the outbox: per endpoint, oldest first, retrying until the receiver takes it.

One replica delivers at a time (`run_as_leader(leases, "webhooks", ...)`). For each endpoint
it posts the oldest undelivered events as one envelope, and marks them delivered once the
receiver answered 2xx or 3xx. A failure is recorded on the rows (`berth events` shows it)
and retried: after a short pause at first, then every `backoff` once `threshold` attempts
in a row have failed, as Distribution's retrying sink does. Nothing later goes out before
an earlier event is delivered, so each endpoint sees its events in order. Delivery is at
least once: a crash between the receiver's answer and the mark sends the events again,
with the same ids.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Final

import aiohttp
from sqlalchemy import delete, select, update
from yarl import URL

from registry import metrics
from registry.config import EndpointConfig
from registry.db import Database, WriteConnection
from registry.db.models import utcnow, webhook_outbox
from registry.leases import Leases, run_as_leader
from registry.webhooks.events import EVENTS_MEDIA_TYPE, envelope

log = logging.getLogger("berth.webhooks")

BATCH: Final = 32  # events per envelope
POLL: Final = 0.5  # seconds between looks at an empty outbox
FIRST_RETRY: Final = 0.1  # seconds; doubles until `backoff`
RETENTION: Final = timedelta(days=1)  # delivered rows are kept this long, for `berth events`
PRUNE_EVERY: Final = 600.0


class DeliveryFailed(Exception):
    pass


class Dispatcher:
    def __init__(self, db: Database, endpoints: Sequence[EndpointConfig]) -> None:
        self._db = db
        self.endpoints = [e for e in endpoints if not e.disabled]

    async def run(self) -> None:
        """Deliver forever (until cancelled)."""
        async with asyncio.TaskGroup() as group:
            for endpoint in self.endpoints:
                group.create_task(self._serve(endpoint))
            group.create_task(self._prune())

    async def _serve(self, endpoint: EndpointConfig) -> None:
        failures = 0
        timeout = aiohttp.ClientTimeout(total=endpoint.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                batch = await self._next_batch(endpoint.name)
                if not batch:
                    await asyncio.sleep(POLL)
                    continue
                ids = [row_id for row_id, _ in batch]
                try:
                    await _post(session, endpoint, [payload for _, payload in batch])
                except DeliveryFailed as exc:
                    failures += 1
                    metrics.WEBHOOK_FAILURES.labels(endpoint.name).inc()
                    await self._mark_failed(ids, str(exc))
                    if failures == endpoint.threshold:
                        log.warning(
                            "%s: %d failures in a row, backing off", endpoint.name, failures
                        )
                    await asyncio.sleep(_pause(failures, endpoint))
                    continue
                if failures:
                    log.info("%s: delivering again after %d failure(s)", endpoint.name, failures)
                failures = 0
                await self._mark_delivered(ids)
                metrics.WEBHOOK_DELIVERIES.labels(endpoint.name).inc(len(ids))

    async def _next_batch(self, endpoint: str) -> list[tuple[int, str]]:
        query = (
            select(webhook_outbox.c.id, webhook_outbox.c.payload)
            .where(webhook_outbox.c.endpoint == endpoint, webhook_outbox.c.delivered_at.is_(None))
            .order_by(webhook_outbox.c.id)
            .limit(BATCH)
        )
        async with self._db.read() as conn:
            return [(int(row.id), str(row.payload)) for row in await conn.execute(query)]

    async def _mark_delivered(self, ids: list[int]) -> None:
        async def work(conn: WriteConnection) -> None:
            await conn.execute(
                update(webhook_outbox)
                .where(webhook_outbox.c.id.in_(ids))
                .values(delivered_at=utcnow(), attempts=webhook_outbox.c.attempts + 1)
            )

        await self._db.transact(work)

    async def _mark_failed(self, ids: list[int], error: str) -> None:
        async def work(conn: WriteConnection) -> None:
            await conn.execute(
                update(webhook_outbox)
                .where(webhook_outbox.c.id.in_(ids))
                .values(
                    attempts=webhook_outbox.c.attempts + 1,
                    last_error=error[:1000],
                    last_attempt_at=utcnow(),
                )
            )

        await self._db.transact(work)

    async def _prune(self) -> None:
        while True:
            try:
                await self.prune_once()
            except Exception:  # a passing database error: next round
                log.warning("pruning webhook events failed", exc_info=True)
            await asyncio.sleep(PRUNE_EVERY)

    async def prune_once(self) -> int:
        """Delete events delivered more than `RETENTION` ago, and those of endpoints no longer
        configured (or disabled) that have waited that long: nothing would ever send them.
        Returns how many of the latter went."""
        cutoff = utcnow() - RETENTION
        names = [e.name for e in self.endpoints]

        async def work(conn: WriteConnection) -> int:
            await conn.execute(delete(webhook_outbox).where(webhook_outbox.c.delivered_at < cutoff))
            orphaned = await conn.execute(
                delete(webhook_outbox).where(
                    webhook_outbox.c.delivered_at.is_(None),
                    webhook_outbox.c.endpoint.not_in(names),
                    webhook_outbox.c.created_at < cutoff,
                )
            )
            return int(orphaned.rowcount or 0)

        dropped = await self._db.transact(work)
        if dropped:
            log.warning(
                "dropped %d undelivered webhook event(s) of endpoints no longer configured",
                dropped,
            )
        return dropped

    async def has_events(self) -> bool:
        async with self._db.read() as conn:
            query = select(webhook_outbox.c.id).limit(1)
            return (await conn.execute(query)).first() is not None


def _pause(failures: int, endpoint: EndpointConfig) -> float:
    if failures >= endpoint.threshold:
        return endpoint.backoff
    return min(FIRST_RETRY * 2.0 ** (failures - 1), endpoint.backoff)


async def _post(
    session: aiohttp.ClientSession, endpoint: EndpointConfig, payloads: list[str]
) -> None:
    headers = {"Content-Type": EVENTS_MEDIA_TYPE}
    for name, value in endpoint.headers.items():
        headers[name] = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    shown = _without_secrets(endpoint.url)
    try:
        async with session.post(endpoint.url, data=envelope(payloads), headers=headers) as reply:
            await reply.read()
            if reply.status >= 400:
                raise DeliveryFailed(f"{shown} answered {reply.status}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        detail = str(exc).replace(endpoint.url, shown)
        raise DeliveryFailed(f"{shown}: {type(exc).__name__}: {detail}") from None


def _without_secrets(url: str) -> str:
    """The URL as errors may show it: no user, password or query (webhook tokens live there)."""
    return str(URL(url).with_user(None).with_query(None))


LEADER_TTL: Final = 10.0  # seconds before another replica takes over from a dead dispatcher


def start_dispatcher(db: Database, endpoints: Sequence[EndpointConfig]) -> asyncio.Task[None]:
    """Deliver from whichever process or replica wins the `webhooks` lease. With no endpoint
    enabled, the task ends at once unless events of former endpoints are left to prune (so a
    registry without webhooks takes no lease). Cancel the task to stop."""
    dispatcher = Dispatcher(db, endpoints)

    async def serve() -> None:
        if not dispatcher.endpoints:
            try:
                if not await dispatcher.has_events():
                    return
            except Exception:
                log.warning("could not look for webhook events to prune", exc_info=True)
                return
        await run_as_leader(Leases(db), "webhooks", dispatcher.run, ttl=LEADER_TTL)

    return asyncio.create_task(serve())
