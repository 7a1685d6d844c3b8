"""The overlay root filesystem of a container, as data (see `runtime.mounts`).

Snapshots come base layer first, as the puller lists them; overlayfs wants the topmost lower
layer first. mount(2) takes at most one page of option data, so when absolute lowerdirs do not
fit, they are written relative to the common parent (mounted from there, as containerd does),
and if that is still too long, through short symlinks `<links>/<n>` (as docker's overlay2
`l/` directory does), which the caller creates from `layer_links`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from runtime.mounts import MS_RDONLY, Mount

PAGE_LIMIT = 4095  # mount data must fit in one page, with its NUL


def _options(lowers: Sequence[str], upper: str, work: str) -> str:
    return f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}"


def layer_links(layers: Sequence[Path], links: Path) -> list[tuple[Path, Path]]:
    """(symlink, target) pairs giving each layer a short name under `links`."""
    return [(links / format(i, "x"), layer) for i, layer in enumerate(layers)]


def overlay_mount(
    layers: Sequence[Path],
    upper: Path,
    work: Path,
    target: Path,
    *,
    links: Path | None = None,
    readonly: bool = False,
) -> Mount:
    """The mount of an overlay over `layers` (base first) at `target`, writable via `upper`."""
    if not layers:
        raise ValueError("an overlay needs at least one layer")
    lowers = [str(p) for p in reversed(layers)]
    if any(c in s for s in [*lowers, str(upper), str(work)] for c in ",:"):
        raise ValueError("overlay paths must not contain ',' or ':'")
    flags = MS_RDONLY if readonly else 0
    data = _options(lowers, str(upper), str(work))
    if len(data) <= PAGE_LIMIT:
        return Mount("overlay", "overlay", str(target), flags, data)
    candidates = [lowers]
    if links is not None:
        candidates.append([str(link) for link, _ in reversed(layer_links(layers, links))])
    for names in candidates:
        cwd = os.path.commonpath([*names, str(upper), str(work)])
        rel = [os.path.relpath(p, cwd) for p in names]
        data = _options(rel, os.path.relpath(upper, cwd), os.path.relpath(work, cwd))
        if len(data) <= PAGE_LIMIT:
            return Mount("overlay", "overlay", str(target), flags, data, cwd=cwd)
    raise ValueError(f"{len(layers)} layers do not fit in one overlay mount")
