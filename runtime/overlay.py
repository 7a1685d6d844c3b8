"""Overlay mounts of image layers, as data (see `runtime.mounts`): the one implementation
behind a container's root filesystem (`berth run`, `berth bundle`) and `berth mount`.

Snapshots come base layer first, as the puller lists them; overlayfs wants the topmost lower
layer first. mount(2) takes at most one page of option data, so when absolute lowerdirs do not
fit, they are written relative to the common parent (mounted from there, as containerd does),
and if that is still too long, through short symlinks `<links>/<n>` (as docker's overlay2
`l/` directory does). The kernel resolves lowerdirs when it mounts, so the links may go once
the mount is made. `Overlay.links` lists the links the mount needs; `make_links` makes them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from runtime.mounts import MS_NODEV, MS_NOSUID, MS_RDONLY, Mount

PAGE_LIMIT = 4095  # mount data must fit in one page, with its NUL
MAX_LOWER_LAYERS = 500  # the kernel's OVL_MAX_STACK


class Overlay(NamedTuple):
    """An overlay mount and the (symlink, layer) pairs to create before it (often none)."""

    mount: Mount
    links: tuple[tuple[Path, Path], ...] = ()


def layer_links(layers: Sequence[Path], links: Path) -> list[tuple[Path, Path]]:
    """(symlink, target) pairs giving each layer a short name under `links`."""
    return [(links / format(i, "x"), layer) for i, layer in enumerate(layers)]


def make_links(overlay: Overlay) -> None:
    """Create the symlinks `overlay.mount` names its layers through (idempotent)."""
    for link, layer in overlay.links:
        if not link.is_symlink():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(layer)


def _options(lowers: Sequence[str], upper_and_work: Sequence[str]) -> str:
    data = f"lowerdir={':'.join(lowers)}"
    if upper_and_work:
        data += f",upperdir={upper_and_work[0]},workdir={upper_and_work[1]}"
    return data


def plan_overlay(
    layers: Sequence[Path],
    target: Path,
    *,
    upper: Path | None = None,
    work: Path | None = None,
    links: Path | None = None,
    flags: int = 0,
) -> Overlay:
    """An overlay of `layers` (base first) at `target`: writable through `upper` and `work`,
    or, without them, read-only (which overlayfs allows from two layers up)."""
    if not layers:
        raise ValueError("an overlay needs at least one layer")
    if (upper is None) != (work is None):
        raise ValueError("an overlay needs both an upper and a work directory, or neither")
    if upper is None and len(layers) < 2:
        raise ValueError("a read-only overlay needs at least two layers")
    if len(layers) > MAX_LOWER_LAYERS:
        raise ValueError(f"{len(layers)} layers are more than overlayfs stacks (at most 500)")
    extra = [str(p) for p in (upper, work) if p is not None]
    lowers = [str(p) for p in reversed(layers)]
    if any(c in s for s in [*lowers, *extra] for c in ",:"):
        raise ValueError("overlay paths must not contain ',' or ':'")
    if upper is None:
        flags |= MS_RDONLY

    def fitted(names: list[str], cwd: str | None) -> str | None:
        paths = [*names, *extra]
        if cwd is not None:
            paths = [os.path.relpath(p, cwd) for p in paths]
        data = _options(paths[: len(names)], paths[len(names) :])
        return data if len(data) <= PAGE_LIMIT else None

    if (data := fitted(lowers, None)) is not None:
        return Overlay(Mount("overlay", "overlay", str(target), flags, data))
    cwd = os.path.commonpath([*lowers, *extra])
    if (data := fitted(lowers, cwd)) is not None:
        return Overlay(Mount("overlay", "overlay", str(target), flags, data, cwd=cwd))
    if links is not None:
        pairs = layer_links(layers, links)
        names = [str(link) for link, _ in reversed(pairs)]
        cwd = os.path.commonpath([*names, *extra])
        if (data := fitted(names, cwd)) is not None:
            mount = Mount("overlay", "overlay", str(target), flags, data, cwd=cwd)
            return Overlay(mount, tuple(pairs))
    raise ValueError(f"{len(layers)} layers do not fit in one overlay mount")


def overlay_mount(
    layers: Sequence[Path],
    upper: Path,
    work: Path,
    target: Path,
    *,
    links: Path | None = None,
    readonly: bool = False,
) -> Mount:
    """The mount of an overlay over `layers` (base first) at `target`, writable via `upper`
    (the links it may need are `layer_links(layers, links)`; see `plan_overlay`)."""
    flags = MS_RDONLY if readonly else 0
    return plan_overlay(layers, target, upper=upper, work=work, links=links, flags=flags).mount


def image_view(layers: Sequence[Path], target: Path, *, empty: Path, links: Path) -> Overlay:
    """A read-only view of an image's layers at `target` (`berth mount`): nodev and nosuid,
    so device nodes and setuid files in the image are shown, never live. `empty` (an empty
    directory) pads a one-layer image; `links` is where short names go if they are needed."""
    padded = [empty, *layers] if len(layers) < 2 else list(layers)
    return plan_overlay(padded, target, links=links, flags=MS_NODEV | MS_NOSUID)
