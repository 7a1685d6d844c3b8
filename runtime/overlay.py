"""The overlay root filesystem of a container, as data (see `runtime.mounts`).

Snapshots come base layer first, as the puller lists them; overlayfs wants the topmost lower
layer first. mount(2) takes at most one page of option data, so a long list of absolute
lowerdirs is rewritten relative to the snapshots' common parent and mounted from there.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from runtime.mounts import MS_RDONLY, Mount

PAGE_LIMIT = 4095  # mount data must fit in one page, with its NUL


def _options(lowers: Sequence[str], upper: str, work: str) -> str:
    return f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}"


def overlay_mount(
    layers: Sequence[Path], upper: Path, work: Path, target: Path, *, readonly: bool = False
) -> Mount:
    """The mount of an overlay over `layers` (base first) at `target`, writable via `upper`."""
    if not layers:
        raise ValueError("an overlay needs at least one layer")
    lowers = [str(p) for p in reversed(layers)]
    if any(c in s for s in [*lowers, str(upper), str(work)] for c in ",:"):
        raise ValueError("overlay paths must not contain ',' or ':'")
    data = _options(lowers, str(upper), str(work))
    cwd: str | None = None
    if len(data) > PAGE_LIMIT:
        cwd = os.path.commonpath([*lowers, str(upper), str(work)])
        rel = [os.path.relpath(p, cwd) for p in lowers]
        data = _options(rel, os.path.relpath(upper, cwd), os.path.relpath(work, cwd))
        if len(data) > PAGE_LIMIT:
            raise ValueError(f"{len(layers)} layers do not fit in one overlay mount")
    return Mount(
        type="overlay",
        source="overlay",
        target=str(target),
        data=data,
        flags=MS_RDONLY if readonly else 0,
        cwd=cwd,
    )
