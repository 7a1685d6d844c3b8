"""Create and start containers: the service `berth run` and `berth bundle` call.

`create` turns an image (its config and unpacked snapshots) and run options into a container
directory holding an OCI bundle; `start` runs it with Berth's executor or hands it to runc or
crun, records the outcome, and with `remove` deletes everything it made.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime import _linux, cgroups, executor, oci
from runtime.containers import Container, ContainerStore, NameInUse, finished, is_running
from runtime.etcfiles import write_etc_files
from runtime.layers import read_image_file
from runtime.names import generate
from runtime.options import RunOptions
from runtime.overlay import make_links, plan_overlay
from runtime.spec import build_spec, command_line
from runtime.users import resolve_user

if TYPE_CHECKING:
    from runtime.network.endpoint import Attachment

RUNTIMES = ("berth", *oci.RUNTIMES)


def make_spec(
    image_config: Mapping[str, Any],
    layers: Sequence[Path],
    options: RunOptions,
    *,
    hostname: str,
    cgroups_path: str,
    host_env: Mapping[str, str] | None = None,
    extra_mounts: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """config.json for the image: the user resolved through the image's own passwd/group."""
    image = image_config.get("config") or {}
    user = resolve_user(
        options.user if options.user is not None else image.get("User"),
        read_image_file(layers, "/etc/passwd"),
        read_image_file(layers, "/etc/group"),
    )
    return build_spec(
        image_config,
        options,
        user,
        hostname=hostname,
        cgroups_path=cgroups_path,
        host_env=host_env,
        extra_mounts=extra_mounts,
    )


def create(
    store: ContainerStore,
    reference: str,
    image_config: Mapping[str, Any],
    layers: Sequence[Path],
    options: RunOptions,
    *,
    runtime: str = "berth",
    host_env: Mapping[str, str] | None = None,
    name: str = "",
    mounts: Sequence[Mapping[str, Any]] = (),
) -> Container:
    """A new container directory with its bundle; nothing runs and nothing is mounted yet.
    `mounts` are more config.json mount entries (runtime.volumemounts makes them).
    Raises containers.NameInUse when `name` is another container's."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}: use {', '.join(RUNTIMES)}")
    args = command_line(image_config.get("config") or {}, options)
    if name:
        container = store.new(reference, args, runtime, list(layers), name)
    else:  # a generated one, as docker gives; a clash makes another
        for attempt in range(10):
            try:
                container = store.new(reference, args, runtime, list(layers), generate(attempt))
                break
            except NameInUse:
                continue
        else:
            container = store.new(reference, args, runtime, list(layers))
    try:
        hostname = options.hostname or container.id[:12]
        etc = write_etc_files(container.path / "etc", hostname, options.network)
        spec = make_spec(
            image_config,
            layers,
            options,
            hostname=hostname,
            cgroups_path=f"/berth/{container.id}",
            host_env=host_env,
            extra_mounts=[*etc, *mounts],
        )
        if options.network not in ("none", "host"):
            from runtime.network.endpoint import prepare

            prepare(container, options.network, options.publish, spec, address=options.ip)
        container.write_spec(spec)
    except BaseException:
        store.remove(container)
        raise
    return container


def start(
    container: Container,
    *,
    keep_stdin: bool = False,
    on_start: Callable[[int], None] | None = None,
    console_socket: int | None = None,
) -> int:
    """Run to completion; returns the exit status. Raises executor.StartError.
    `on_start(pid)` runs once the container's process has been exec'd. A container with a
    terminal sends its pty master over `console_socket` (runtime.console)."""
    state = container.state()
    layers = [Path(p) for p in state.layers]
    overlay = plan_overlay(
        layers,
        container.rootfs,
        upper=container.upper,
        work=container.work,
        links=container.path / "l",
    )
    make_links(overlay)
    mount = overlay.mount

    def started(pid: int) -> None:
        container.update(status="running", pid=pid, started=time.time(), exit_code=None)
        if on_start is not None:
            on_start(pid)

    code = executor.SETUP_FAILED
    network = _attach_network(container)
    try:
        if state.runtime == "berth":
            code = executor.run(
                container.spec(),
                str(container.path),
                overlay=mount,
                keep_stdin=keep_stdin,
                on_start=started,
                console_socket=console_socket,
            )
        else:
            code = oci.run(
                state.runtime,
                str(container.path),
                container.id,
                overlay=mount,
                keep_stdin=keep_stdin,
                on_start=started,
                console_socket=console_socket,
            )
    finally:
        if network is not None:
            network.close()
        with contextlib.suppress(FileNotFoundError):  # `berth rm -f` may have removed it
            container.update(status="exited", exit_code=code, finished=time.time(), pid=None)
    return code


def _attach_network(container: Container) -> Attachment | None:
    """A bridge network's attachment (runtime.network.endpoint), None for none and host;
    the network code is imported only for a container that has one."""
    if not (container.path / "network.json").exists():
        return None
    from runtime.network.endpoint import NetworkError, attach

    try:
        return attach(container)
    except (NetworkError, OSError) as exc:
        raise executor.StartError(executor.SETUP_FAILED, str(exc)) from exc


def remove(store: ContainerStore, container: Container, *, volumes: bool = False) -> None:
    """Delete the container: its directory (upper dir included) and any cgroup left over;
    with `volumes`, its anonymous volumes too (`rm -v`, `run --rm`), as docker does."""
    anonymous: list[str] = []
    if volumes and (container.path / "mounts.json").exists():  # volumemounts.RECORD
        from runtime.volumemounts import anonymous_volumes

        anonymous = anonymous_volumes(container.path)
    state = container.state()
    if state.cgroups_path:
        cgroups.locate(state.cgroups_path).remove()
    if (container.path / "network.json").exists():  # a lease its killed owner left
        from runtime.network.endpoint import release

        release(container)
    _wait_unmounted(container.rootfs)
    store.remove(container)
    if anonymous:
        from runtime.volumemounts import remove_volumes
        from runtime.volumes import VolumeStore

        remove_volumes(VolumeStore(store.dir.parent), anonymous)


def _wait_unmounted(rootfs: Path, seconds: float = 10.0) -> None:
    """With runc/crun the process that started the container unmounts its root on the host
    once the container is gone: `rm -f` of a container it just killed gives it a moment."""
    deadline = time.monotonic() + seconds
    while os.path.ismount(rootfs):
        if time.monotonic() > deadline:
            raise OSError(16, "rootfs is still mounted", str(rootfs))
        time.sleep(0.05)


def write_bundle(
    directory: Path,
    image_config: Mapping[str, Any],
    layers: Sequence[Path],
    options: RunOptions,
    *,
    hostname: str,
    host_env: Mapping[str, str] | None = None,
) -> Path:
    """A standalone bundle for any OCI runtime: config.json, and the overlay mounted at
    DIR/rootfs on the host (writes go to DIR/upper). Returns the rootfs; unmount it when done."""
    rootfs, upper, work = directory / "rootfs", directory / "upper", directory / "work"
    for d in (rootfs, upper, work):
        d.mkdir(parents=True, exist_ok=True)
    if os.path.ismount(rootfs):
        raise OSError(16, "already mounted", str(rootfs))
    spec = make_spec(
        image_config,
        layers,
        options,
        hostname=hostname,
        cgroups_path=f"/berth/bundle-{hostname}",
        host_env=host_env,
    )
    (directory / "config.json").write_text(json.dumps(spec, indent=2))
    overlay = plan_overlay(layers, rootfs, upper=upper, work=work, links=directory / "l")
    make_links(overlay)
    _linux.apply(overlay.mount)
    return rootfs


def stop(container: Container, timeout: float = 10, signum: int = signal.SIGTERM) -> None:
    """docker stop: `signum`, then SIGKILL after `timeout` seconds; returns once the exit
    is recorded (and a detached container's log complete)."""
    container.update(stopped=True)  # before the signal: the monitor must not restart it
    for sig, wait in ((signum, timeout), (signal.SIGKILL, 30.0)):
        if timeout <= 0 and sig != signal.SIGKILL:
            continue
        try:
            if is_running(container.state()):
                with contextlib.suppress(ProcessLookupError):
                    kill(container, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if finished(container.state()):
                    return
                time.sleep(0.05)
        except FileNotFoundError:  # a --rm container's monitor has removed it: it is gone
            return


def kill(container: Container, signum: int = 9) -> None:
    """Send `signum` to a running container (through runc/crun `kill` for those)."""
    state = container.state()
    if state.pid is None:
        return
    if state.runtime == "berth":
        os.kill(state.pid, signum)
    else:
        oci.kill(state.runtime, container.id, signum)
