"""A command on a pseudo-terminal the test opens itself (CI has no terminal): the user's side
of `run -it`, `attach` and `exec -it`, typing after the output it expects."""

from __future__ import annotations

import fcntl
import os
import re
import select
import subprocess
import termios
import time
from collections.abc import Sequence


class PtySession:
    def __init__(self, argv: Sequence[str], rows: int = 33, cols: int = 101) -> None:
        self.master, slave = os.openpty()
        termios.tcsetwinsize(slave, (rows, cols))
        self.process = subprocess.Popen(
            list(argv),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
        )
        os.close(slave)
        self.output = b""
        self.seen = 0  # what `expect` has matched so far
        self.closed = False

    def _read(self, timeout: float) -> bool:
        """Whether output came within `timeout`."""
        if self.closed:
            time.sleep(timeout)
            return False
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return False
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the command and its children closed the terminal
            data = b""
        self.closed = not data
        self.output += data
        return bool(data)

    def expect(self, pattern: str, timeout: float = 30) -> re.Match[bytes]:
        """Wait for `pattern` (a regex) in the output after the last match."""
        regex = re.compile(pattern.encode())
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.output, self.seen)
            if match:
                self.seen = match.end()
                return match
            if time.monotonic() > deadline or self.closed:
                raise AssertionError(f"{pattern!r} not in {self.output[self.seen :]!r}")
            self._read(0.1)

    def wait_raw(self, timeout: float = 30) -> None:
        """Until the command has put the terminal in raw mode (it is then attached)."""
        deadline = time.monotonic() + timeout
        while termios.tcgetattr(self.master)[3] & termios.ICANON:
            if time.monotonic() > deadline:
                raise AssertionError("the terminal never went raw")
            self._read(0.05)

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def resize(self, rows: int, cols: int) -> None:
        termios.tcsetwinsize(self.master, (rows, cols))  # SIGWINCH to the command

    def cooked(self) -> bool:
        return bool(termios.tcgetattr(self.master)[3] & termios.ICANON)

    def wait(self, timeout: float = 30) -> int:
        """The command's exit status, reading the rest of its output meanwhile."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                self.process.kill()
                raise AssertionError(f"still running; output {self.output!r}")
            self._read(0.1)
        while self._read(0.05):
            pass
        return self.process.returncode

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.master)

    def __enter__(self) -> PtySession:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
