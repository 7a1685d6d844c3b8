"""registry.process_id: the cached id is the process's own, in a forked child too."""

from __future__ import annotations

import os

from registry import process_id


def test_is_this_process() -> None:
    assert process_id.current() == os.getpid()


def test_a_forked_child_sees_its_own_id() -> None:
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover  (the child reports through the pipe and exits)
        try:
            os.write(write, str(process_id.current()).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        seen = int(pipe.read())
    os.waitpid(child, 0)
    assert seen == child
    assert process_id.current() == os.getpid() != child
