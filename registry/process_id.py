"""This process's id, read once and again in the child after a fork.

os.getpid() is a system call on every call (glibc stopped caching it), and the metrics and the
access log ask for it on every request.
"""

from __future__ import annotations

import os

__all__ = ["current"]

_pid = os.getpid()


def current() -> int:
    return _pid


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)
