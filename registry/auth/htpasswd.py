"""Users and bcrypt password hashes from an htpasswd file, as `htpasswd -B` writes it.

The file is re-read when its modification time or size changes, so `berth htpasswd add` or
`htpasswd -B` take effect without a restart. Only bcrypt entries ($2y$, $2b$, $2a$) are
accepted, as in Distribution; other hash types are skipped with a warning. Checking a
password for an unknown user costs one bcrypt round all the same, so response times do not
reveal which users exist.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import logging
import os
import secrets
import tempfile
import threading
from pathlib import Path

import bcrypt

__all__ = ["Htpasswd", "parse_htpasswd", "set_password", "validate_username"]

log = logging.getLogger("berth.auth")

_BCRYPT_PREFIXES = ("$2y$", "$2b$", "$2a$")
_DEFAULT_COST = 10
_CACHE_LIMIT = 4096


@functools.cache
def _dummy_hash(cost: int) -> bytes:
    """A real hash to spend the same time on when the user does not exist."""
    return bcrypt.hashpw(b"berth-no-such-user", bcrypt.gensalt(cost))


def _cost(hashed: bytes) -> int:
    try:
        return min(max(int(hashed[4:6]), 4), 31)
    except ValueError:
        return _DEFAULT_COST


def validate_username(user: str) -> None:
    if not user or ":" in user or any(c.isspace() or not c.isprintable() for c in user):
        raise ValueError(f"invalid user name {user!r}: no ':', spaces or control characters")
    if user == "anonymous":
        raise ValueError("'anonymous' is reserved for callers without credentials")


def parse_htpasswd(text: str, source: str = "htpasswd") -> dict[str, bytes]:
    """User name to bcrypt hash; blank lines and `#` comments are ignored."""
    users: dict[str, bytes] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not user or user == "anonymous":
            log.warning("%s:%d: skipped: not a `user:hash` entry", source, number)
        elif not hashed.startswith(_BCRYPT_PREFIXES):
            log.warning(
                "%s:%d: skipped user %s: only bcrypt hashes are supported (htpasswd -B)",
                source,
                number,
                user,
            )
        else:
            users[user] = hashed.encode()
    return users


class Htpasswd:
    """A live view of an htpasswd file. `verify` is safe to call concurrently."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._users: dict[str, bytes] = {}
        self._dummy_cost = _DEFAULT_COST
        # Successful checks are remembered as an HMAC under a per-process key, so repeated
        # Basic-auth requests do not each pay for bcrypt and no password is kept.
        self._cache_key = secrets.token_bytes(32)
        self._verified: dict[str, bytes] = {}
        self._reload()

    def _reload(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            stamp, users = (0, -1), {}
        else:
            stamp = (st.st_mtime_ns, st.st_size)
            if stamp == self._stamp:
                return
            users = parse_htpasswd(
                self.path.read_text(encoding="utf-8", errors="replace"), str(self.path)
            )
        if stamp != self._stamp:
            if self._stamp is not None:
                log.info("reloaded %s: %d users", self.path, len(users))
            self._stamp, self._users, self._verified = stamp, users, {}
            if users:
                self._dummy_cost = _cost(next(iter(users.values())))

    def users(self) -> frozenset[str]:
        with self._lock:
            self._reload()
            return frozenset(self._users)

    def check(self, user: str, password: str) -> bool:
        """Blocking: bcrypt is CPU-bound. Use `verify` from async code."""
        with self._lock:
            self._reload()
            hashed = self._users.get(user)
            verified = self._verified
            dummy = None if hashed is not None else _dummy_hash(self._dummy_cost)
        secret = password.encode()
        mark = hmac.new(
            self._cache_key, b"%s\0%s\0%s" % (user.encode(), secret, hashed or b""), hashlib.sha256
        ).digest()
        if hashed is not None and hmac.compare_digest(verified.get(user, b""), mark):
            return True
        try:
            ok = bcrypt.checkpw(secret, hashed or dummy or b"") and hashed is not None
        except ValueError:  # a malformed hash in the file, or a password over 72 bytes
            ok = False
        if ok:
            with self._lock:
                if verified is self._verified:
                    if len(verified) >= _CACHE_LIMIT:
                        verified.clear()
                    verified[user] = mark
        return ok

    async def verify(self, user: str, password: str) -> bool:
        return await asyncio.to_thread(self.check, user, password)


def set_password(path: Path, user: str, password: str, cost: int = _DEFAULT_COST) -> bool:
    """Create or update `user`'s entry, replacing the file atomically. True if it was new.

    A new file is created mode 0600; an existing one keeps its mode.
    """
    validate_username(user)
    if len(password.encode()) > 72:
        raise ValueError("bcrypt passwords are limited to 72 bytes")
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(cost)).decode()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        lines, mode = [], 0o600
    entry, created = f"{user}:{hashed}", True
    for i, line in enumerate(lines):
        if line.partition(":")[0].strip() == user:
            lines[i], created = entry, False
            break
    else:
        lines.append(entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return created
