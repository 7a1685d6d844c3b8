"""Holder names: every one distinct within a process, its own pid after a fork, and a
process's holders are never judged dead while it runs."""

from __future__ import annotations

import os

from registry.holders import holder_name, known_dead


def test_holder_names_of_one_process_differ_and_name_it() -> None:
    names = {holder_name() for _ in range(1000)}
    assert len(names) == 1000
    for name in names:
        assert name.split(":")[1] == str(os.getpid())
        assert not known_dead(name)


def test_a_forked_child_names_holders_with_its_own_pid() -> None:
    parent = holder_name()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its holder name and exit at once
        os.write(write, holder_name().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 1000).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert child.split(":")[1] == str(pid)
    assert child.rsplit(":", 1)[0] != parent.rsplit(":", 1)[0]
    assert known_dead(child)  # its process has exited
    assert not known_dead(parent)
