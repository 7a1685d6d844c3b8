"""The publish helper (blobstore.publish_helper): files reach their names through a process of
its own, each request answered on its own, and the process never outlives its user."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import blobstore
from blobstore import Digest, FilesystemBlobStore
from blobstore.publish_helper import PublishHelper, PublishHelperGone
from tests.blobstore.test_conformance import put
from tests.support.publish_helpers import gone_within, helpers_of, running

_REPO = Path(blobstore.__file__).resolve().parents[1]


@pytest.fixture
async def helper() -> AsyncIterator[PublishHelper]:
    publisher = PublishHelper()
    try:
        yield publisher
    finally:
        await publisher.close()


def _written(directory: Path, name: str, data: bytes) -> str:
    path = directory / name
    path.write_bytes(data)
    return str(path)


async def test_concurrent_publishes_all_reach_their_names(
    tmp_path: Path, helper: PublishHelper
) -> None:
    (tmp_path / "out").mkdir()
    files = {f"f{n}": os.urandom(n * 37) for n in range(200)}
    await asyncio.gather(
        *(
            helper.publish(_written(tmp_path, name, data), str(tmp_path / "out" / name))
            for name, data in files.items()
        )
    )
    for name, data in files.items():
        assert (tmp_path / "out" / name).read_bytes() == data
        assert not (tmp_path / name).exists()
    pid = helper.pid
    assert pid is not None
    assert running(pid)
    await helper.publish(_written(tmp_path, "more", b"x"), str(tmp_path / "out" / "more"))
    assert helper.pid == pid  # one helper serves them all


async def test_a_failing_request_fails_alone(tmp_path: Path, helper: PublishHelper) -> None:
    (tmp_path / "out").mkdir()
    results = await asyncio.gather(
        helper.publish(_written(tmp_path, "a", b"a"), str(tmp_path / "out" / "a")),
        helper.publish(str(tmp_path / "missing"), str(tmp_path / "out" / "m")),
        helper.publish(_written(tmp_path, "b", b"b"), str(tmp_path / "no-such-dir" / "b")),
        helper.publish(_written(tmp_path, "c", b"c"), str(tmp_path / "out" / "c")),
        return_exceptions=True,
    )
    assert results[0] is None
    assert results[3] is None
    assert isinstance(results[1], FileNotFoundError)
    assert isinstance(results[2], FileNotFoundError)
    assert (tmp_path / "out" / "a").read_bytes() == b"a"
    assert (tmp_path / "out" / "c").read_bytes() == b"c"
    assert (tmp_path / "b").read_bytes() == b"b"  # left where it was, for its caller


async def test_a_killed_helper_fails_its_requests_and_the_next_one_starts_anew(
    tmp_path: Path, helper: PublishHelper
) -> None:
    (tmp_path / "out").mkdir()
    await helper.publish(_written(tmp_path, "a", b"a"), str(tmp_path / "out" / "a"))
    first = helper.pid
    assert first is not None
    os.kill(first, signal.SIGSTOP)  # the request below waits for it
    waiting = asyncio.ensure_future(
        helper.publish(_written(tmp_path, "b", b"b"), str(tmp_path / "out" / "b"))
    )
    await asyncio.sleep(0.05)
    assert not waiting.done()
    os.kill(first, signal.SIGKILL)
    with pytest.raises(PublishHelperGone):
        await waiting
    await helper.publish(_written(tmp_path, "c", b"c"), str(tmp_path / "out" / "c"))
    assert helper.pid not in (None, first)
    assert (tmp_path / "out" / "c").read_bytes() == b"c"


async def test_close_stops_the_helper_and_an_interrupt_does_not(
    tmp_path: Path, helper: PublishHelper
) -> None:
    await helper.publish(_written(tmp_path, "a", b"a"), str(tmp_path / "a2"))
    pid = helper.pid
    assert pid is not None
    os.kill(pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the whole process group
    os.kill(pid, signal.SIGTERM)
    await helper.publish(_written(tmp_path, "b", b"b"), str(tmp_path / "b2"))
    assert helper.pid == pid
    await helper.close()
    assert not running(pid)
    assert helpers_of(os.getpid()) == []


_USER = """
import asyncio, os, sys
from blobstore.publish_helper import PublishHelper

async def main(directory):
    helper = PublishHelper()
    await helper.publish(f"{directory}/a", f"{directory}/a2")
    print(helper.pid, flush=True)
    child = os.fork()
    if child == 0:  # a forked child publishes through a helper of its own
        async def in_child():
            await helper.publish(f"{directory}/b", f"{directory}/b2")
            print(helper.pid, flush=True)
            await helper.close()
        asyncio.run(in_child())
        os._exit(0)
    os.waitpid(child, 0)
    await helper.publish(f"{directory}/c", f"{directory}/c2")
    print(helper.pid, "published", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main(sys.argv[1]))
"""


def test_a_forked_child_has_its_own_helper_and_none_outlives_its_user(tmp_path: Path) -> None:
    for name in "abc":
        (tmp_path / name).write_bytes(name.encode())
    user = subprocess.Popen(
        [sys.executable, "-c", _USER, str(tmp_path)], cwd=_REPO, stdout=subprocess.PIPE, text=True
    )
    assert user.stdout is not None
    try:
        parents = int(user.stdout.readline())
        childs = int(user.stdout.readline())
        assert user.stdout.readline().split() == [str(parents), "published"]
    finally:
        user.kill()
        user.wait()
        user.stdout.close()
    assert childs != parents
    assert [(tmp_path / f"{n}2").read_bytes() for n in "abc"] == [b"a", b"b", b"c"]
    assert not running(childs)  # closed by the child
    assert gone_within(parents, 10)  # its user was killed: the socket closed


async def test_a_store_with_the_helper_publishes_small_blobs_through_it(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path, publish_helper=True)
    try:
        data = os.urandom(4096)
        upload = await store.open_upload(blobstore.new_upload_id())
        await upload.write(data)
        info = await upload.commit(Digest.of(data), len(data))
        assert len(helpers_of(os.getpid())) == 1
        assert store.blob_path(info.digest).read_bytes() == data
        big = os.urandom(1 << 20)  # past the inline size: one thread publishes it, as before
        upload = await store.open_upload(blobstore.new_upload_id())
        await upload.write(big)
        info = await upload.commit(Digest.of(big), len(big))
        assert store.blob_path(info.digest).read_bytes() == big
        assert os.listdir(tmp_path / "ingest") == []
    finally:
        await store.close()
    assert helpers_of(os.getpid()) == []


def test_a_new_event_loop_gets_a_new_helper_and_the_old_one_stops(tmp_path: Path) -> None:
    helper = PublishHelper()
    pids = []

    async def publish(name: str) -> None:
        await helper.publish(_written(tmp_path, name, name.encode()), str(tmp_path / f"{name}2"))
        pids.append(helper.pid)

    asyncio.run(publish("a"))
    asyncio.run(publish("b"))
    asyncio.run(helper.close())
    first, second = pids
    assert first is not None
    assert second is not None
    assert first != second
    assert gone_within(first, 10)
    assert not running(second)
    assert (tmp_path / "a2").read_bytes() == b"a"
    assert (tmp_path / "b2").read_bytes() == b"b"


async def test_a_store_whose_helper_is_killed_mid_publish_still_publishes(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path, publish_helper=True)
    try:
        first = os.urandom(4096)
        await put(store, first)
        (pid,) = helpers_of(os.getpid())
        os.kill(pid, signal.SIGSTOP)  # the next commit waits for it
        data = os.urandom(4096)
        pushing = asyncio.ensure_future(put(store, data))
        await asyncio.sleep(0.05)
        assert not pushing.done()
        os.kill(pid, signal.SIGKILL)
        info = await pushing  # finished without the helper
        assert store.blob_path(info.digest).read_bytes() == data
        assert gone_within(pid, 10)
        again = await put(store, os.urandom(4096))  # and the next one has a new helper
        assert store.blob_path(again.digest).exists()
        assert len(helpers_of(os.getpid())) == 1
        assert os.listdir(tmp_path / "ingest") == []
    finally:
        await store.close()
