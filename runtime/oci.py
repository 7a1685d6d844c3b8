"""Hand a bundle to an installed OCI runtime (runc, crun): `<runtime> run --bundle DIR ID`.

The runtime starts in a private mount namespace where the overlay root is mounted at
<bundle>/rootfs, so nothing is left mounted on the host whatever happens to it.

Debian's crun 1.8 refuses a hybrid cgroup layout (v1 controllers plus cgroup2 on
/sys/fs/cgroup/unified: "cgroups in hybrid mode not supported, drop all controllers from
cgroupv2"). In that private namespace Berth also detaches /sys/fs/cgroup/unified, so crun
sees a pure v1 layout and manages the v1 controllers, as runc does anyway.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import Callable, Sequence

from runtime import _linux
from runtime.executor import SETUP_FAILED, StartError, fork_and_supervise
from runtime.lookup import check_executable
from runtime.mounts import MS_PRIVATE, MS_REC, Mount

RUNTIMES = ("runc", "crun")
STATE_ROOT = "/run/berth"
UNIFIED = "/sys/fs/cgroup/unified"


def _hybrid() -> bool:
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split(" - ") for line in f]
    unified = any(pre.split()[4] == UNIFIED and post.startswith("cgroup2") for pre, post in mounts)
    v1 = any(post.startswith("cgroup ") for _, post in mounts)
    return unified and v1


def _child(
    binary: str,
    name: str,
    bundle: str,
    cid: str,
    overlay: Mount | None,
    keep_stdin: bool,
    command: Sequence[str] = ("run",),
) -> None:
    os.setsid()
    _linux.unshare(_linux.CLONE_NEWNS)
    _linux.mount("", "/", "", MS_REC | MS_PRIVATE)
    if name == "crun" and _hybrid():
        _linux.umount2(UNIFIED, _linux.MNT_DETACH)
    if overlay is not None:
        _linux.apply(overlay, os.path.join(bundle, "rootfs"))
    with open(os.path.join(bundle, "config.json")) as f:
        spec = json.load(f)
    check_executable(os.path.join(bundle, spec["root"]["path"]), spec)
    if not keep_stdin:
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    argv = [name, "--root", os.path.join(STATE_ROOT, name), *command, "--bundle", bundle, cid]
    os.execv(binary, argv)


def run(
    name: str,
    bundle: str,
    cid: str,
    *,
    overlay: Mount | None = None,
    keep_stdin: bool = False,
    on_start: Callable[[int], None] | None = None,
    console_socket: int | None = None,
) -> int:
    """Run the bundle with runc or crun and return the container's exit status. With
    process.terminal, the pty master goes over `console_socket` (runtime.oci_console)."""
    if name not in RUNTIMES:
        raise StartError(SETUP_FAILED, f"unknown runtime {name!r}: use berth, runc or crun")
    binary = shutil.which(name)
    if binary is None:
        raise StartError(SETUP_FAILED, f"{name} is not installed")
    if console_socket is not None:
        from runtime import oci_console

        with open(os.path.join(bundle, "config.json")) as f:
            terminal = bool(json.load(f)["process"].get("terminal"))
        if terminal:
            return oci_console.run(
                lambda command: _child(binary, name, bundle, cid, overlay, True, command),
                binary,
                name,
                cid,
                console_socket,
                on_start,
            )
    return fork_and_supervise(
        lambda: _child(binary, name, bundle, cid, overlay, keep_stdin), on_start
    )


def kill(name: str, cid: str, signum: int) -> None:
    """`<runtime> kill ID SIGNAL`, for a container this module started."""
    import subprocess  # here: `berth run` never needs it (start-up time)

    binary = shutil.which(name) or name
    subprocess.run(
        [binary, "--root", os.path.join(STATE_ROOT, name), "kill", cid, str(signum)],
        check=False,
        capture_output=True,
        timeout=30,
    )
