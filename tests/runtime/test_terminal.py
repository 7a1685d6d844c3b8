"""The pure parts of attaching: the detach keys spotted in typed input, and frames
reassembled from the pieces a stream socket delivers."""

from __future__ import annotations

import pytest

from runtime.attach import EXIT, RESIZE, STDOUT, Frames, frame
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
