"""UI sessions in a signed cookie: who is logged in, and the CSRF token of the session.

The cookie holds `base64url(json).base64url(hmac-sha256)`, the HMAC keyed from the shared
secret (`http.secret`, or the random one in the database), so every replica accepts it and
nothing is kept server-side. It never holds a password. Every visitor gets one (anonymous
users' delete forms need a CSRF token too); a login or logout issues a new one with a new
token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Final

COOKIE: Final = "berth_ui_session"
PURPOSE: Final = "ui-session-cookie"  # what the key is derived for, from the shared secret
MAX_AGE: Final = 12 * 3600  # seconds a session lives after login


@dataclass(frozen=True, slots=True)
class Session:
    user: str | None
    csrf: str
    issued: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionCodec:
    def __init__(self, key: bytes) -> None:
        self._key = key  # registry.shared_secret.derive(http secret, PURPOSE)

    def new(self, user: str | None = None) -> Session:
        return Session(user, secrets.token_urlsafe(24), int(time.time()))

    def encode(self, session: Session) -> str:
        body = json.dumps(
            {"u": session.user, "c": session.csrf, "t": session.issued}, separators=(",", ":")
        ).encode()
        return f"{_b64(body)}.{_b64(self._sign(body))}"

    def decode(self, value: str, now: float | None = None) -> Session | None:
        """The session in a cookie value; None if forged, malformed or expired."""
        body_text, _, signature = value.partition(".")
        try:
            body, mac = _unb64(body_text), _unb64(signature)
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(mac, self._sign(body)):
            return None
        try:
            data = json.loads(body)
            user, csrf, issued = data["u"], data["c"], data["t"]
        except (ValueError, KeyError, TypeError):
            return None
        if not isinstance(csrf, str) or not isinstance(user, str | None):
            return None
        if not isinstance(issued, int):
            return None
        session = Session(user, csrf, issued)
        age = (time.time() if now is None else now) - session.issued
        return session if -300 <= age < MAX_AGE else None  # 300: clock skew between replicas

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()
