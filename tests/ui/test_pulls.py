"""Last-pulled times: noted on manifest GET, written at most once a minute per manifest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from registry.db import Database
from registry.db.models import manifest_pulls
from registry.http.keys import PULLS
from registry.service import PullRecorder
from tests.api.oci import push_image
from tests.ui.conftest import Client


async def test_a_pull_shows_on_the_repository_page(client: Client) -> None:
    digest, _ = await push_image(client, "team/app", reference="1")
    before = await (await client.get("/ui/r/team/app")).text()
    assert before.count('class="muted">never</span>') == 1  # last pulled: never
    assert (await client.head("/v2/team/app/manifests/1")).status == 200  # not a pull
    assert (await client.get("/v2/team/app/manifests/1")).status == 200
    await client.app[PULLS].flush()
    after = await (await client.get("/ui/r/team/app")).text()
    assert 'class="muted">never</span>' not in after
    assert "just now" in after
    detail = await (await client.get(f"/ui/r/team/app/-/manifests/{digest}")).text()
    assert "Last pulled</dt><dd><time" in detail


async def test_pulls_are_written_at_most_once_a_minute(client: Client, database_url: str) -> None:
    digest, _ = await push_image(client, "team/app", reference="1")
    db = Database(database_url)
    now = [datetime(2026, 11, 30, 8, 0, tzinfo=UTC)]
    recorder = PullRecorder(db, clock=lambda: now[0])

    async def stored() -> datetime:
        async with db.read() as conn:
            found: datetime = (await conn.execute(select(manifest_pulls.c.pulled_at))).scalar_one()
            return found

    try:
        recorder.saw("team/app", digest)
        await recorder.flush()
        first = await stored()
        for _ in range(100):  # a burst of pulls within the minute: nothing more to write
            recorder.saw("team/app", digest)
        assert recorder.pending == 0
        now[0] += timedelta(seconds=59)
        recorder.saw("team/app", digest)
        assert recorder.pending == 0
        now[0] += timedelta(seconds=2)
        recorder.saw("team/app", digest)
        assert recorder.pending == 1
        await recorder.flush()
        second = await stored()
        assert second > first
        # Another worker or replica noting the same manifest within the minute writes nothing.
        other = PullRecorder(db, clock=lambda: now[0] + timedelta(seconds=30))
        other.saw("team/app", digest)
        await other.flush()
        assert await stored() == second
        recorder.saw("team/app", "sha256:" + "0" * 64)  # unknown (or deleted since): skipped
        await recorder.flush()
    finally:
        await db.dispose()
