"""The parent's side of a started container: forward signals, learn whether setup failed,
reap it, and turn its wait status into docker's exit code (128+N for signal N)."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from types import FrameType

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
             signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH)  # fmt: skip


def exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def supervise(pid: int, errors: int, on_start: Callable[[int], None] | None) -> tuple[bytes, int]:
    """Wait for child `pid`, forwarding FORWARDED signals to it meanwhile.

    `errors` is the read end of a close-on-exec pipe the child writes a setup failure to;
    it reaches EOF at exec, and then `on_start(pid)` is called unless setup failed.
    Returns (failure message or b"", exit code)."""

    def forward(signum: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    chunks = []
    try:
        while chunk := os.read(errors, 4096):
            chunks.append(chunk)
        if on_start is not None and not chunks:  # exec'd: the container runs
            on_start(pid)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(errors)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return b"".join(chunks), exit_code(status)
