"""`rm -f` of a container whose foreground `berth run` is recording its exit at that very
moment (state.json.tmp renamed into place): the removal goes through, and the late write finds
nothing to write to."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

from runtime import ContainerStore
from runtime.containers import Container

ROUNDS = 100
WRITES = 5  # a foreground run's last state updates


def _record_exit(container: Container, go: threading.Event) -> None:
    go.wait()
    for _ in range(WRITES):
        with contextlib.suppress(FileNotFoundError):  # removed: as `berth run` expects
            container.update(status="exited", exit_code=137)


def test_removal_outlasts_the_exit_being_recorded(tmp_path: Path) -> None:
    store = ContainerStore(tmp_path)
    for _ in range(ROUNDS):
        container = store.new("busybox", ["sh"], "berth", [])
        for n in range(30):  # a directory as full as a real one: rmtree takes a while
            (container.path / f"file{n}").write_bytes(b"x")
        go = threading.Event()
        writer = threading.Thread(target=_record_exit, args=(container, go))
        writer.start()
        go.set()
        try:
            store.remove(container)
        finally:
            writer.join()
        assert not container.path.exists()
