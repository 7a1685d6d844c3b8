"""Finding the publish helpers (blobstore.publish_helper) a process started, and waiting for
them to stop."""

from __future__ import annotations

import os
import time
from pathlib import Path


def _state_and_parent(pid: int | str) -> tuple[str, int] | None:
    """The process's state letter and parent's pid, from /proc; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return None
    return fields[0], int(fields[1])


def running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    found = _state_and_parent(pid)
    return found is not None and found[0] != "Z"


def helpers_of(parent: int) -> list[int]:
    """The running publish helpers `parent` started."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        process = _state_and_parent(entry)
        if process is None or process[0] == "Z" or process[1] != parent:
            continue
        try:
            command = Path(f"/proc/{entry}/cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if b"publish_helper_process.py" in command:
            found.append(int(entry))
    return found


def gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
