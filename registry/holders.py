"""Lease holder names that tell whether their process is known dead.

A holder is `host:pid:machine:tag`, where `machine` stands for this boot of this machine and
this PID namespace (where a PID means one process). A holder with our `machine` whose PID no
longer runs is dead for certain (a process never comes back), so its leases can be released
at once instead of after their ttl: a server restarted after a crash picks its uploads and
its leadership up immediately. Holders from other machines are never judged: their leases
simply expire.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import os
import secrets
import socket
from pathlib import Path

__all__ = ["holder_name", "known_dead"]


@functools.cache
def _machine() -> str:
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    namespace = os.readlink("/proc/self/ns/pid")
    return hashlib.sha256(f"{boot}/{namespace}".encode()).hexdigest()[:16]


class _Process:
    """This process's part of its holder names, made once (a hostname, a pid and a random
    word on every upload request were 4% of a small upload's CPU) and again after a fork.
    The random word tells its tags from those of an earlier process with the same pid; the
    counter tells its holders apart."""

    prefix = ""
    tags: itertools.count[int] = itertools.count()

    @classmethod
    def start(cls) -> str:
        word = secrets.token_hex(4)
        cls.prefix = f"{socket.gethostname()}:{os.getpid()}:{_machine()}:{word}"
        cls.tags = itertools.count()
        return cls.prefix

    @classmethod
    def forked(cls) -> None:
        cls.prefix = ""


os.register_at_fork(after_in_child=_Process.forked)


def holder_name(tag: str | None = None) -> str:
    """A holder name for this process; `tag` (default: one no other holder of this process
    or of an earlier one with its pid has) tells its holders apart."""
    if tag is not None:
        return f"{socket.gethostname()}:{os.getpid()}:{_machine()}:{tag}"
    return f"{_Process.prefix or _Process.start()}{next(_Process.tags):x}"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead, just not yet reaped
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def known_dead(holder: str) -> bool:
    """True only for a holder of this machine whose process has exited."""
    parts = holder.split(":")
    if len(parts) != 4 or not parts[1].isdigit() or parts[2] != _machine():
        return False
    return int(parts[1]) != os.getpid() and not _running(int(parts[1]))
