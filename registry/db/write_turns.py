"""Turns at SQLite's write lock between processes, handed over rather than polled for.

SQLite cannot wait for its write lock without blocking the thread, so a worker whose
BEGIN IMMEDIATE found another worker's transaction slept and tried again (0.5 ms, doubling to
5 ms). Under a storm of small pushes the lock is nearly always held: each worker retried about
1.7 times per transaction, and a fifth of the two-core machine sat idle while requests waited
for a lock that had long been released. Now a process takes its turn, an flock on a file
beside the database, before BEGIN IMMEDIATE and gives it back after COMMIT. A process that
finds the turn taken waits for it in a thread blocked in flock, which the kernel wakes the
moment the holder lets go, or dies.

The turn only orders the processes that use it (every Berth worker and command on this
database): SQLite's lock stays the truth, and a writer that does not take turns is still
waited for by polling. flock, not fcntl: its lock belongs to the open file, so the process's
own SQLite connections are untouched, and each process opens the file after any fork.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import threading

from registry import process_id


class WriteTurns:
    def __init__(self, database_path: str) -> None:
        self.path = database_path + "-write-turn"
        self._pid = -1

    def _start(self) -> None:
        """This process's own file and waiting thread (first use, and first use after a fork
        or a `close`)."""
        self._pid = process_id.current()
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._held = False  # this process has the turn
        self._used = False  # and a transaction of it began in it
        self._arrival: asyncio.Future[None] | None = None
        self._asked = threading.Semaphore(0)
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def take(self) -> bool:
        """Take the turn if it is free or already this process's; never blocks. The caller
        then begins a transaction, and gives the turn back when it ends."""
        if self._pid != process_id.current():
            self._start()
        if not self._held:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            self._held = True
        self._used = True
        return True

    async def wait(self) -> None:
        """Return once this process has the turn (or may try again: `take` tells). One thread
        waits for every caller of the process; a caller that gives up leaves it waiting."""
        loop = asyncio.get_running_loop()
        if self._pid == process_id.current() and self._loop not in (None, loop):
            self.close()  # used from another event loop before: its thread answers to that one
        if self._pid != process_id.current():
            self._start()
        if self._held:
            return
        if self._arrival is None:
            if self._thread is None:
                self._loop = loop
                self._thread = threading.Thread(
                    target=self._wait_for_turns,
                    args=(loop, self._fd, self._asked, self._stop),
                    name="write-turns",
                    daemon=True,
                )
                self._thread.start()
            self._arrival = loop.create_future()
            self._asked.release()
        await asyncio.shield(self._arrival)

    def give_back(self) -> None:
        if self._pid == process_id.current() and self._held:
            self._held = self._used = False
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Give the turn back, and let the file and the thread go (a later use starts anew)."""
        if self._pid != process_id.current():
            return
        self.give_back()
        self._pid = -1
        self._stop.set()
        if self._thread is None:
            os.close(self._fd)
        else:  # the thread closes the file as it stops: it may be in flock on it
            self._asked.release()

    def _wait_for_turns(
        self,
        loop: asyncio.AbstractEventLoop,
        fd: int,
        asked: threading.Semaphore,
        stop: threading.Event,
    ) -> None:
        try:
            while True:
                asked.acquire()
                if stop.is_set():
                    return
                fcntl.flock(fd, fcntl.LOCK_EX)
                if stop.is_set():
                    return
                try:
                    loop.call_soon_threadsafe(self._arrived, stop)
                except RuntimeError:  # the loop is closed: the process is stopping
                    return
        finally:
            os.close(fd)

    def _arrived(self, stop: threading.Event) -> None:
        if stop is not self._stop or stop.is_set():  # closed since
            return
        if not self._held:
            try:  # a no-op if the thread's flock still holds; else it was given back since
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # and another process has it now: wait again
                self._asked.release()
                return
            self._held = True
        arrival, self._arrival = self._arrival, None
        if arrival is not None and not arrival.done():
            arrival.set_result(None)
        # The woken callers run first, and begin; if none does (all gave up), let go.
        asyncio.get_running_loop().call_soon(self._give_back_unused)

    def _give_back_unused(self) -> None:
        if not self._used:
            self.give_back()
