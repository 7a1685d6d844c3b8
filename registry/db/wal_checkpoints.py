"""SQLite WAL checkpoints on a thread of their own, never inside a request's COMMIT.

By default the connection whose COMMIT takes the write-ahead log past 1000 pages copies the
log back into the database and fsyncs it, then and there: on Berth's writer connection that is
the event loop, stalled for the length of an fsync every few dozen uploads. The writer turns
automatic checkpoints off (`PRAGMA wal_autocheckpoint=0`) and this thread does a PASSIVE
checkpoint (it never waits for, nor blocks, readers and writers) whenever the log holds the
same number of frames not yet copied back. Every worker runs one; they overlap harmlessly.

The count comes from the wal-index in the `-shm` file (mxFrame less nBackfill, as laid out in
SQLite's "WAL-mode file format"), not from the size of the `-wal` file: SQLite reuses the log
from its start after a checkpoint and never shrinks the file, so once it has grown past the
limit its size says nothing about what is left to copy.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import struct
import threading
from typing import Final

log = logging.getLogger(__name__)

WAL_FRAMES: Final = 1000  # SQLite's own default: 1000 pages (of 4 KiB) written since
POLL_SECONDS: Final = 0.25
# SQLite cuts the log back to this size when it restarts it, so a burst does not leave a
# large file behind for good.
JOURNAL_SIZE_LIMIT: Final = 64 << 20

# The wal-index header's mxFrame (the last valid frame) and the checkpoint info's nBackfill
# (frames already copied into the database), native byte order.
_MAX_FRAME = struct.Struct("=I"), 16
_BACKFILLED = struct.Struct("=I"), 96
_HEADER_BYTES: Final = 100


def pending_frames(path: str) -> int:
    """Frames in the log of the database at `path` not yet copied into it (0 without a log)."""
    try:
        fd = os.open(path + "-shm", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return 0
    try:
        header = os.pread(fd, _HEADER_BYTES, 0)
    finally:
        os.close(fd)
    if len(header) < _HEADER_BYTES:
        return 0
    (last,) = _MAX_FRAME[0].unpack_from(header, _MAX_FRAME[1])
    (backfilled,) = _BACKFILLED[0].unpack_from(header, _BACKFILLED[1])
    return max(int(last) - int(backfilled), 0)


class Checkpointer:
    def __init__(self, path: str) -> None:
        self._path = path
        self.checkpoints = 0  # done by this thread, for tests and curiosity
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-checkpoints", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while not self._stop.wait(POLL_SECONDS):
                if pending_frames(self._path) < WAL_FRAMES:
                    continue
                if conn is None:
                    conn = sqlite3.connect(self._path, isolation_level=None, timeout=0)
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # busy: another worker's checkpoint; retried
                    log.debug("WAL checkpoint of %s: %s", self._path, exc)
                self.checkpoints += 1
        finally:
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
