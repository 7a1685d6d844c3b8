"""Inside the container's new mount namespace: mount the root, the bundle's mounts and the
device nodes, pivot_root into it, then mask and protect what Docker masks and protects.

Runs in the forked child before exec; every system call goes through runtime._linux.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Mapping
from typing import Any

from runtime import _linux
from runtime.cgroups import Layout, current_layout
from runtime.mounts import (
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    MS_SLAVE,
    Mount,
    from_spec,
)
from runtime.paths import secure_join

_DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8),
            ("urandom", 1, 9), ("tty", 5, 0))  # fmt: skip
_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
          ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"),
          ("ptmx", "pts/ptmx"))  # fmt: skip
_KEPT_FLAGS = MS_NOSUID | MS_NODEV | MS_NOEXEC | 0x10 | 0x400 | 0x800  # sync, noatime, nodiratime


def _make_target(path: str, like_file: bool) -> None:
    if like_file:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.exists(path):
            with open(path, "a"):
                pass
    else:
        os.makedirs(path, exist_ok=True)


def _remount_ro(target: str) -> None:
    kept = os.statvfs(target).f_flag & _KEPT_FLAGS
    _linux.mount("", target, "", MS_BIND | MS_REMOUNT | MS_RDONLY | kept)


def _bind(source: str, target: str, *, recursive: bool, readonly: bool) -> None:
    _make_target(target, not os.path.isdir(source))
    _linux.mount(source, target, "", MS_BIND | (MS_REC if recursive else 0))
    if readonly:
        _remount_ro(target)


def _own_cgroup_paths() -> dict[str, str]:
    paths = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for c in controllers.split(","):
                paths[c] = path
    return paths


def _mount_cgroups(target: str, m: Mount, layout: Layout) -> None:
    """The container's own cgroups, read-only: tmpfs plus one bind per v1 hierarchy."""
    own = _own_cgroup_paths()
    os.makedirs(target, exist_ok=True)
    if layout.unified:
        _bind(
            os.path.join(layout.unified, own.get("", "/").lstrip("/")),
            target,
            recursive=False,
            readonly=True,
        )
        return
    _linux.mount("tmpfs", target, "tmpfs", m.flags & ~MS_RDONLY, "mode=755")
    for controller, mountpoint in sorted(layout.v1.items()):
        name = os.path.basename(mountpoint)
        dest = os.path.join(target, name)
        if os.path.exists(dest):  # co-mounted controllers share a hierarchy
            continue
        source = os.path.join(mountpoint, own.get(controller, "/").lstrip("/"))
        _bind(source, dest, recursive=False, readonly=True)
    if m.readonly:
        _remount_ro(target)


def _mount_one(rootfs: str, m: Mount, new_net: bool, layout: Layout) -> None:
    target = secure_join(rootfs, m.target)
    if m.type == "cgroup":
        _mount_cgroups(target, m, layout)
    elif m.type == "sysfs" and not new_net:  # sysfs of another netns cannot be mounted
        _bind("/sys", target, recursive=True, readonly=m.readonly)
    elif m.is_bind:
        if not os.path.exists(m.source):
            raise OSError(2, f"bind mount source does not exist: {m.source}", m.source)
        _bind(m.source, target, recursive=bool(m.flags & MS_REC), readonly=m.readonly)
    else:
        _make_target(target, like_file=False)
        _linux.mount(m.source, target, m.type, m.flags, m.data)
    if m.propagation:
        _linux.mount("", target, "", m.propagation)


def _make_devices(rootfs: str) -> None:
    dev = secure_join(rootfs, "/dev")
    for name, major, minor in _DEVICES:
        path = os.path.join(dev, name)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        os.chmod(path, 0o666)
    for name, target in _LINKS:
        with contextlib.suppress(FileExistsError):
            os.symlink(target, os.path.join(dev, name))


def _pivot(rootfs: str) -> None:
    """runc's pivot_root(".", ".") then detach the old root stacked underneath."""
    old_root = os.open("/", os.O_DIRECTORY | os.O_RDONLY)
    try:
        os.chdir(rootfs)
        _linux.pivot_root(".", ".")
        os.fchdir(old_root)
        _linux.mount("", ".", "", MS_SLAVE | MS_REC)
        _linux.umount2(".", _linux.MNT_DETACH)
    finally:
        os.close(old_root)
    os.chdir("/")


def _mask(path: str) -> None:
    try:
        is_dir = stat.S_ISDIR(os.stat(path).st_mode)
    except FileNotFoundError:
        return
    if is_dir:
        _linux.mount("tmpfs", path, "tmpfs", MS_RDONLY)
    else:
        _linux.mount("/dev/null", path, "", MS_BIND)


def _protect(path: str) -> None:
    if not os.path.exists(path):
        return
    _linux.mount(path, path, "", MS_BIND | MS_REC)
    _remount_ro(path)


def prepare(
    spec: Mapping[str, Any],
    bundle: str,
    overlay: Mount | None,
    new_net: bool,
    in_cgroup: Callable[[], None],
) -> None:
    """Build the container's filesystem view and pivot into it (caller already unshared NEWNS).
    `in_cgroup()` returns once the caller is in the container's cgroup: a `cgroup` mount
    shows the caller's own cgroups, so it waits for that (the rest need not)."""
    _linux.mount("", "/", "", MS_REC | MS_PRIVATE)
    layout = current_layout()  # before any mount below shows up in mountinfo
    rootfs = os.path.join(bundle, spec["root"]["path"])
    if overlay is not None:
        _linux.apply(overlay, rootfs)
    else:
        _linux.mount(rootfs, rootfs, "", MS_BIND | MS_REC)
    for entry in spec.get("mounts") or []:
        mount = from_spec(entry)
        if mount.type == "cgroup":
            in_cgroup()
        _mount_one(rootfs, mount, new_net, layout)
    _make_devices(rootfs)
    os.makedirs(secure_join(rootfs, spec["process"].get("cwd") or "/"), exist_ok=True)
    _pivot(rootfs)
    linux = spec.get("linux") or {}
    for path in linux.get("maskedPaths") or []:
        _mask(path)
    for path in linux.get("readonlyPaths") or []:
        _protect(path)
    if spec["root"].get("readonly"):
        _remount_ro("/")
