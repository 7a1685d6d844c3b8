"""What `berth info` says about the machine the containers run on, read where docker reads it:
uname, /proc/meminfo, /etc/os-release, /proc/self/mountinfo and the runtimes on PATH."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from runtime.cgroups import current_layout

# statfs(2) names as docker's graphdriver reports them ("Backing Filesystem")
_BACKING = {"ext2": "extfs", "ext3": "extfs", "ext4": "extfs", "xfs": "xfs", "btrfs": "btrfs",
            "tmpfs": "tmpfs", "zfs": "zfs", "overlay": "overlayfs", "f2fs": "f2fs"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class HostInfo:
    kernel: str
    operating_system: str
    architecture: str
    cpus: int
    memory: int  # bytes
    name: str
    cgroup_version: int
    backing_filesystem: str
    runtimes: dict[str, str] = field(default_factory=dict)  # name -> path ("" for berth)
    runtime_versions: dict[str, str] = field(default_factory=dict)


def _os_release() -> str:
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            text = Path(path).read_text()
        except OSError:
            continue
        for line in text.splitlines():
            key, _, value = line.partition("=")
            if key == "PRETTY_NAME":
                return value.strip().strip('"')
    return "<unknown>"


def total_memory() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def filesystem_of(path: Path) -> str:
    """The type of the filesystem holding `path` (the deepest mount point above it)."""
    target = os.path.realpath(path)
    best, fstype = "", "unknown"
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fields = pre.split()
            if len(fields) < 5 or not post:
                continue
            mountpoint = fields[4].replace("\\040", " ")
            inside = target == mountpoint or target.startswith(mountpoint.rstrip("/") + "/")
            if inside and len(mountpoint) >= len(best):
                best, fstype = mountpoint, post.split()[0]
    return _BACKING.get(fstype, fstype)


def _version(binary: str) -> str:
    """`runc --version`'s first line without its program name: `1.1.5+ds1`."""
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except OSError:
        return ""
    first = out.splitlines()[0] if out else ""
    return first.rpartition(" version ")[2].strip() if " version " in first else first.strip()


OCI_RUNTIMES = ("runc", "crun")  # runtime.oci.RUNTIMES, without loading the executor


def host_info(root: Path) -> HostInfo:
    uname = os.uname()
    found = {name: path for name in OCI_RUNTIMES if (path := shutil.which(name))}
    root.mkdir(parents=True, exist_ok=True)
    return HostInfo(
        kernel=uname.release,
        operating_system=_os_release(),
        architecture=uname.machine,
        cpus=os.cpu_count() or 1,
        memory=total_memory(),
        name=uname.nodename,
        cgroup_version=2 if current_layout().unified else 1,
        backing_filesystem=filesystem_of(root),
        runtimes={"berth": "", **found},
        runtime_versions={name: _version(path) for name, path in found.items()},
    )
