"""What only the filesystem driver promises: its on-disk layout, sendfile paths, and that a
process killed at any moment leaves no partial or wrong blob under blobs/."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import blobstore
from blobstore import (
    Digest,
    DigestMismatch,
    FilesystemBlobStore,
    LocalBlobPaths,
    SizeMismatch,
)
from tests.blobstore.test_conformance import put
from tests.support.publish_helpers import gone_within, helpers_of

_WRITER = """
import asyncio, os, sys
from blobstore import Digest, FilesystemBlobStore, new_upload_id

async def main() -> None:
    small = sys.argv[2] == "small"  # blobs of 4 KiB, 8 at a time, through the publish helper
    store = FilesystemBlobStore(sys.argv[1], publish_helper=small)
    n = 0
    while True:
        blobs = [os.urandom(4096) for _ in range(8)] if small else [os.urandom(3 << 20)]
        await asyncio.gather(*(put(store, data) for data in blobs))
        n += 1
        if n == 2:
            print("running", flush=True)

async def put(store, data):
    upload = await store.begin() if len(data) > 4096 else await store.open_upload(new_upload_id())
    for i in range(0, len(data), 1 << 19):
        await upload.write(data[i:i + (1 << 19)])
    await upload.commit(Digest.of(data), len(data))

asyncio.run(main())
"""


def test_exported_api_is_pinned() -> None:
    assert sorted(blobstore.__all__) == sorted(
        [
            "SUPPORTED_ALGORITHMS",
            "BlobInfo",
            "BlobNotFound",
            "BlobReader",
            "BlobStore",
            "BlobStoreError",
            "BlobURLs",
            "Digest",
            "DigestMismatch",
            "FilesystemBlobStore",
            "FilesystemUpload",
            "InvalidDigest",
            "InvalidRange",
            "LocalBlobPaths",
            "SizeMismatch",
            "Upload",
            "UploadNotFound",
            "VerifyingReader",
            "is_digest",
            "new_upload_id",
        ]
    )
    assert all(hasattr(blobstore, name) for name in blobstore.__all__)


async def test_an_opened_upload_has_a_file_only_once_bytes_reach_it(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    upload_id = blobstore.new_upload_id()
    await (await store.open_upload(upload_id)).close()
    assert list((tmp_path / "ingest").iterdir()) == []
    upload = await store.open_upload(upload_id)
    await upload.write(b"first")
    await upload.close()
    assert (tmp_path / "ingest" / upload_id).read_bytes() == b"first"


async def test_a_small_blob_in_one_go_is_published_from_memory(tmp_path: Path) -> None:
    """Bytes that never reached the ingest file are published by one write of a fresh file;
    a wrong blob and a re-push leave no file at all."""
    store = FilesystemBlobStore(tmp_path)
    data = os.urandom(4096)
    upload = await store.open_upload(blobstore.new_upload_id())
    await upload.write(data)
    info = await upload.commit(Digest.of(data), len(data))
    published = tmp_path / "blobs" / "sha256" / info.digest.hex[:2] / info.digest.hex
    assert published.read_bytes() == data
    assert stat.S_IMODE(published.stat().st_mode) == 0o444
    again = await store.open_upload(blobstore.new_upload_id())
    await again.write(data)
    assert await again.commit(Digest.of(data)) == info
    wrong = await store.open_upload(blobstore.new_upload_id())
    await wrong.write(data)
    with pytest.raises(DigestMismatch):
        await wrong.commit(Digest.of(b"other bytes"))
    with pytest.raises(SizeMismatch):
        await (await store.open_upload(blobstore.new_upload_id())).commit(info.digest, 1)
    empty = await (await store.open_upload(blobstore.new_upload_id())).commit(Digest.of(b""), 0)
    published = tmp_path / "blobs" / "sha256" / empty.digest.hex[:2] / empty.digest.hex
    assert published.read_bytes() == b""
    assert stat.S_IMODE(published.stat().st_mode) == 0o444
    assert list((tmp_path / "ingest").iterdir()) == []


def test_a_small_blob_is_read_only_whatever_the_umask(tmp_path: Path) -> None:
    """The mode of a blob published from memory does not depend on the server's umask (a
    child process: the umask is the whole process's)."""
    script = (
        "import asyncio, os, sys, blobstore\n"
        "from blobstore import Digest, FilesystemBlobStore\n"
        "os.umask(0o077)\n"
        "async def main():\n"
        "    store = FilesystemBlobStore(sys.argv[1])\n"
        "    upload = await store.open_upload(blobstore.new_upload_id())\n"
        "    await upload.write(b'umask')\n"
        "    print((await upload.commit(Digest.of(b'umask'))).digest.hex)\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, check=True
    )
    hex_digest = done.stdout.strip()
    published = tmp_path / "blobs" / "sha256" / hex_digest[:2] / hex_digest
    assert published.read_bytes() == b"umask"
    assert stat.S_IMODE(published.stat().st_mode) == 0o444


async def test_layout_and_read_only_blobs(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    info = await put(store, b"layout", "sha512")
    path = tmp_path / "blobs" / "sha512" / info.digest.hex[:2] / info.digest.hex
    assert isinstance(store, LocalBlobPaths)
    assert store.blob_path(info.digest) == path
    assert path.read_bytes() == b"layout"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert os.listdir(tmp_path / "ingest") == []


async def test_ingest_is_a_plain_file_named_by_the_upload_id(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    upload = await store.begin()
    await upload.write(b"in progress")
    await upload.close()
    assert (tmp_path / "ingest" / upload.id).read_bytes() == b"in progress"
    assert list((tmp_path / "blobs").rglob("*.*")) == []
    await (await store.resume(upload.id)).abort()


@pytest.mark.parametrize("sizes", ["big", "small"])
def test_sigkill_during_uploads_leaves_only_whole_verified_blobs(
    tmp_path: Path, sizes: str
) -> None:
    root = tmp_path / "store"
    repo = Path(blobstore.__file__).resolve().parents[1]
    for delay in (0.05, 0.2, 0.45):
        child = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(root), sizes], cwd=repo, stdout=subprocess.PIPE
        )
        assert child.stdout is not None
        assert child.stdout.readline() == b"running\n"
        helpers = helpers_of(child.pid)
        assert len(helpers) == (sizes == "small")
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        # Its helper finishes the batch in hand, and stops.
        assert all(gone_within(pid, 10) for pid in helpers)
    blobs = [p for p in (root / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) >= 6
    for path in blobs:
        algorithm = path.parent.parent.name
        assert hashlib.new(algorithm, path.read_bytes()).hexdigest() == path.name
        assert Digest(algorithm, path.name).hex[:2] == path.parent.name
    # The interrupted ingests stay for a resume or a cleanup; a restarted store can abort them.
    left = set(os.listdir(root / "ingest"))
    assert asyncio.run(_abort_all(FilesystemBlobStore(root))) == left
    assert os.listdir(root / "ingest") == []


async def _abort_all(store: FilesystemBlobStore) -> set[str]:
    ids = set(await store.ingest_ids())
    for upload_id in ids:
        await (await store.resume(upload_id)).abort()
    return ids
