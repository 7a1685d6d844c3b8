"""SQLite WAL checkpoints on a thread of their own, never inside a request's COMMIT.

By default the connection whose COMMIT takes the write-ahead log past 1000 pages copies the
log back into the database and fsyncs it, then and there: on Berth's writer connection that is
the event loop, stalled for the length of an fsync every few dozen uploads. The writer turns
automatic checkpoints off (`PRAGMA wal_autocheckpoint=0`) and this thread does a PASSIVE
checkpoint (it never waits for, nor blocks, readers and writers) whenever the log has grown past
the same size. Every worker runs one; they overlap harmlessly.

SQLite reuses the log from its start after a checkpoint and never shrinks the file, so once it
has passed the limit its size no longer says whether anything is left to copy; a log that has
not been written since a checkpoint that copied all of it is left alone. Only `stat` looks at
the files: opening and closing one of the database's own files in this process would drop the
POSIX locks SQLite's connections hold on it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from typing import Final

log = logging.getLogger(__name__)

WAL_LIMIT: Final = 1000 * 4096  # SQLite's own default: 1000 pages of 4 KiB
POLL_SECONDS: Final = 0.25


class Checkpointer:
    def __init__(self, path: str) -> None:
        self._path = path
        self._wal = path + "-wal"
        self.checkpoints = 0  # done by this thread, for tests and curiosity
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-checkpoints", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        copied: int | None = None  # the log's mtime when a checkpoint last copied all of it
        try:
            while not self._stop.wait(POLL_SECONDS):
                try:
                    wal = os.stat(self._wal)
                except FileNotFoundError:
                    continue
                if wal.st_size < WAL_LIMIT or wal.st_mtime_ns == copied:
                    continue
                if conn is None:
                    conn = sqlite3.connect(self._path, isolation_level=None, timeout=0)
                try:
                    busy, frames, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as exc:  # busy: another worker's checkpoint; retried
                    log.debug("WAL checkpoint of %s: %s", self._path, exc)
                else:
                    self.checkpoints += 1
                    copied = wal.st_mtime_ns if not busy and done == frames else None
        finally:
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
