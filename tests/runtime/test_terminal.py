"""The client's side of attaching: the detach keys spotted in typed input, frames reassembled
from the pieces a stream socket delivers, and the exit code got however early the container
ends."""

from __future__ import annotations

import os
import signal
import socket
import termios
from collections.abc import Iterator

import pytest

from runtime.attach import EXIT, RESIZE, STDOUT, Frames, frame, relay
from runtime.terminal import DETACH_KEYS, DetachKeys, parse_detach_keys


def test_ctrl_p_ctrl_q_detaches_and_nothing_of_it_reaches_the_container() -> None:
    keys = DetachKeys()
    assert keys.feed(b"ls\r\x10") == b"ls\r"  # Ctrl-P held back: it may start the sequence
    assert not keys.detached
    assert keys.feed(b"\x11ignored") == b""
    assert keys.detached


def test_ctrl_p_followed_by_another_key_goes_through() -> None:
    keys = DetachKeys()
    assert keys.feed(b"\x10") == b""
    assert keys.feed(b"x") == b"\x10x"
    assert keys.feed(b"\x10\x10") == b"\x10"  # the first goes, the second may start it
    assert not keys.detached


def test_frames_are_reassembled_across_any_split() -> None:
    stream = frame(STDOUT, b"hello\r\n") + frame(RESIZE, b"40 120") + frame(EXIT, b"7")
    for cut in range(len(stream) + 1):
        frames = Frames()
        got = frames.feed(stream[:cut]) + frames.feed(stream[cut:])
        assert got == [(STDOUT, b"hello\r\n"), (RESIZE, b"40 120"), (EXIT, b"7")]


def test_detach_keys_are_parsed_as_docker_spells_them() -> None:
    assert parse_detach_keys("ctrl-p,ctrl-q") == DETACH_KEYS == b"\x10\x11"
    assert parse_detach_keys("ctrl-a,d") == b"\x01d"
    assert parse_detach_keys("ctrl-@,ctrl-[,ctrl-_") == b"\x00\x1b\x1f"
    for bad in ("ctrl-1", "ctrl-", "ab", ""):
        with pytest.raises(ValueError, match="detach key"):
            parse_detach_keys(bad)


@pytest.fixture
def terminal_as_stdin() -> Iterator[int]:
    """A pseudo-terminal of 33x101 on fd 0 (the user's terminal, as `run -it` has it); the
    master end is yielded, and fd 0 and the signal handlers relay() sets are put back."""
    master, slave = os.openpty()
    termios.tcsetwinsize(slave, (33, 101))
    saved_stdin = os.dup(0)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}
    os.dup2(slave, 0)
    try:
        yield master
    finally:
        os.dup2(saved_stdin, 0)
        for fd in (saved_stdin, slave, master):
            os.close(fd)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def test_a_container_that_exits_before_the_client_speaks_still_gives_its_code(
    terminal_as_stdin: int,
) -> None:
    # The relay sends the exit and closes before `run -it` sends the window size: that send
    # fails (EPIPE), and the exit code still waiting in the socket is what the user gets.
    ours, relays = socket.socketpair()
    relays.sendall(frame(STDOUT, b"bye\r\n") + frame(EXIT, b"3"))
    relays.close()
    with ours:
        assert relay(ours, tty=True, stdin=True, close_stdin=True) == 3
    assert termios.tcgetattr(0)[3] & termios.ICANON  # the terminal left as it was


def test_a_client_typing_after_the_exit_gets_the_code_too(terminal_as_stdin: int) -> None:
    ours, relays = socket.socketpair()
    os.write(terminal_as_stdin, b"ls\r")
    relays.sendall(frame(EXIT, b"0"))
    relays.close()
    with ours:
        assert relay(ours, tty=False, stdin=True, close_stdin=True) == 0
