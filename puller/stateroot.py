"""Where Berth keeps its local state (images, snapshots, containers) unless told otherwise.
Alone in its module so that `berth ps` finds the directory without loading the image store."""

from __future__ import annotations

import os
from pathlib import Path


def default_root() -> Path:
    """/var/lib/berth for root, else $XDG_DATA_HOME/berth (~/.local/share/berth)."""
    if os.geteuid() == 0:
        return Path("/var/lib/berth")
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "berth"
