"""The user's side of a container's terminal: raw mode while attached, the window size, and
docker's detach keys (Ctrl-P Ctrl-Q) spotted in what the user types."""

from __future__ import annotations

import contextlib
import os
import termios
import tty
from collections.abc import Iterator

DETACH_KEYS = b"\x10\x11"  # Ctrl-P Ctrl-Q, docker's default --detach-keys


@contextlib.contextmanager
def raw(fd: int) -> Iterator[None]:
    """The terminal `fd` in raw mode (as docker's MakeRaw), restored however the block ends;
    nothing happens when `fd` is not a terminal."""
    try:
        saved = termios.tcgetattr(fd)
    except termios.error:
        yield
        return
    tty.setraw(fd, termios.TCSANOW)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def window_size(fd: int) -> tuple[int, int] | None:
    """(rows, columns) of the terminal `fd`, None when it is not one."""
    try:
        return termios.tcgetwinsize(fd)
    except (termios.error, OSError):
        return None


def resize(fd: int, size: tuple[int, int]) -> None:
    """TIOCSWINSZ on a pty: the kernel sends SIGWINCH to its foreground process group."""
    with contextlib.suppress(termios.error, OSError):
        termios.tcsetwinsize(fd, size)


def is_terminal(fd: int) -> bool:
    return os.isatty(fd)


def parse_detach_keys(text: str) -> bytes:
    """docker's --detach-keys: comma-separated keys, each a letter or `ctrl-X` for X in a-z,
    @, [, \\, ], ^ or _ ("ctrl-p,ctrl-q" is the default). Raises ValueError."""
    keys = bytearray()
    for key in text.split(","):
        if len(key) == 1:
            keys += key.encode()
        elif key.lower().startswith("ctrl-") and len(key) == 6:
            char = key[5].lower()
            if not ("a" <= char <= "z" or char in "@[\\]^_"):
                raise ValueError(f"invalid detach key {key!r}")
            keys.append(ord(char.upper()) & 0x1F)
        else:
            raise ValueError(f"invalid detach keys {text!r}: use e.g. ctrl-p,ctrl-q")
    return bytes(keys)


class DetachKeys:
    """Filters typed input, holding back a prefix of the detach sequence until the next key
    shows whether the user is detaching (then `detached` is set) or typed it for the
    container (then it goes through), as docker's escape proxy does."""

    def __init__(self, keys: bytes = DETACH_KEYS) -> None:
        self.keys = keys
        self.held = b""
        self.detached = False

    def feed(self, data: bytes) -> bytes:
        """What of `data` to pass on; sets `detached` when the sequence is complete."""
        out = bytearray()
        for byte in data:
            key = bytes((byte,))
            if not self.keys.startswith(self.held + key):
                out += self.held  # not the sequence after all: what was held goes through
                self.held = b""
            if self.keys.startswith(self.held + key):
                self.held += key
                if self.held == self.keys:
                    self.detached = True
                    self.held = b""
                    return bytes(out)
            else:
                out += key
        return bytes(out)
