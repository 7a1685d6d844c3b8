"""Container cgroups: cgroup v2 where it is the only hierarchy, v1 controllers otherwise.

This machine is hybrid (v1 controllers beside an empty /sys/fs/cgroup/unified), so v1 is used
there, as runc does. Paths follow config.json's `cgroupsPath` (e.g. /berth/<id>), relative to
each hierarchy's root.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

# v1 hierarchies a container gets a directory in; cpuset needs cpus/mems copied down, so not it
V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "devices", "blkio", "freezer")


class Layout(NamedTuple):
    """Where the hierarchies are mounted: `unified` set means pure cgroup v2."""

    unified: str | None
    v1: Mapping[str, str]  # controller -> mount point


def parse_layout(mountinfo: str) -> Layout:
    v1: dict[str, str] = {}
    v2: list[str] = []
    for line in mountinfo.splitlines():
        pre, _, post = line.partition(" - ")
        fields, tail = pre.split(), post.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        mountpoint, fstype = fields[4], tail[0]
        if fstype == "cgroup2":
            v2.append(mountpoint)
        elif fstype == "cgroup":
            for option in tail[2].split(","):
                if option in V1_CONTROLLERS:
                    v1.setdefault(option, mountpoint)  # the first: later ones are bind copies
    unified = v2[0] if v2 and not v1 else None
    return Layout(unified, v1)


def current_layout() -> Layout:
    with open("/proc/self/mountinfo") as f:
        return parse_layout(f.read())


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _device_rule(rule: Mapping[str, Any]) -> str:
    major = "*" if rule.get("major") is None else str(rule["major"])
    minor = "*" if rule.get("minor") is None else str(rule["minor"])
    return f"{rule.get('type', 'a')} {major}:{minor} {rule.get('access', 'rwm')}"


class Cgroup(NamedTuple):
    """One container's cgroup directories, one per hierarchy."""

    dirs: Mapping[str, Path]  # controller ("" for v2) -> directory
    version: int

    def join(self, pid: int = 0) -> None:
        """Move `pid` (0: the caller) into every hierarchy."""
        for d in self.dirs.values():
            _write(d / "cgroup.procs", str(pid))

    def remove(self) -> None:
        """rmdir every directory; waits briefly for exiting tasks. Idempotent."""
        for d in self.dirs.values():
            for _ in range(100):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY:
                        raise
                    time.sleep(0.01)


def locate(cgroups_path: str, layout: Layout | None = None) -> Cgroup:
    """The directories `cgroups_path` names, whether or not they exist."""
    layout = layout or current_layout()
    rel = cgroups_path.strip("/")
    if layout.unified:
        return Cgroup({"": Path(layout.unified, rel)}, 2)
    return Cgroup({c: Path(mp, rel) for c, mp in layout.v1.items()}, 1)


def _apply_v1(cg: Cgroup, resources: Mapping[str, Any]) -> None:
    d = cg.dirs
    if "devices" in d:
        for rule in resources.get("devices") or []:
            name = "devices.allow" if rule.get("allow") else "devices.deny"
            _write(d["devices"] / name, _device_rule(rule))
    memory = resources.get("memory") or {}
    if "memory" in d and memory.get("limit"):
        _write(d["memory"] / "memory.limit_in_bytes", str(memory["limit"]))
        memsw = d["memory"] / "memory.memsw.limit_in_bytes"
        if memory.get("swap") and memsw.exists():
            _write(memsw, str(memory["swap"]))
    cpu = resources.get("cpu") or {}
    if "cpu" in d and cpu.get("quota"):
        _write(d["cpu"] / "cpu.cfs_period_us", str(cpu.get("period") or 100_000))
        _write(d["cpu"] / "cpu.cfs_quota_us", str(cpu["quota"]))
    pids = resources.get("pids") or {}
    if "pids" in d and pids.get("limit"):
        _write(d["pids"] / "pids.max", str(pids["limit"]))


def _apply_v2(cg: Cgroup, resources: Mapping[str, Any]) -> None:
    d = cg.dirs[""]
    memory = resources.get("memory") or {}
    if memory.get("limit"):
        _write(d / "memory.max", str(memory["limit"]))
        if memory.get("swap"):
            _write(d / "memory.swap.max", str(max(0, memory["swap"] - memory["limit"])))
    cpu = resources.get("cpu") or {}
    if cpu.get("quota"):
        _write(d / "cpu.max", f"{cpu['quota']} {cpu.get('period') or 100_000}")
    pids = resources.get("pids") or {}
    if pids.get("limit"):
        _write(d / "pids.max", str(pids["limit"]))


def _enable_v2_controllers(leaf: Path, root: Path) -> None:
    parents = [p for p in leaf.parents if p == root or root in p.parents]
    for parent in sorted(parents, key=lambda p: len(p.parts)):
        available = (parent / "cgroup.controllers").read_text().split()
        wanted = [c for c in ("cpu", "memory", "pids") if c in available]
        if wanted:
            _write(parent / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))


def create(cgroups_path: str, resources: Mapping[str, Any]) -> Cgroup:
    """Make the container's cgroup and write its limits; removes it again on failure."""
    layout = current_layout()
    cg = locate(cgroups_path, layout)
    try:
        for d in cg.dirs.values():
            if cg.version == 2 and layout.unified:
                d.parent.mkdir(parents=True, exist_ok=True)
                _enable_v2_controllers(d, Path(layout.unified))
            d.mkdir(parents=True, exist_ok=True)
        (_apply_v2 if cg.version == 2 else _apply_v1)(cg, resources)
    except OSError:
        cg.remove()
        raise
    return cg
