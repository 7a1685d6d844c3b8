"""Session cookies: signed with a key derived from the shared secret, and expiring."""

from __future__ import annotations

import time

from registry.shared_secret import derive
from registry.ui.session import MAX_AGE, PURPOSE, SessionCodec


def test_a_session_survives_encoding_and_nothing_else_does() -> None:
    codec = SessionCodec(derive(b"secret", PURPOSE))
    session = codec.new("alice")
    value = codec.encode(session)
    assert codec.decode(value) == session
    assert SessionCodec(derive(b"other", PURPOSE)).decode(value) is None
    body, _, mac = value.partition(".")
    forged = codec.encode(codec.new("admin")).partition(".")[0]
    assert codec.decode(f"{forged}.{mac}") is None
    for junk in ("", ".", "a.b", "!!!.???", body):
        assert codec.decode(junk) is None


def test_a_session_expires() -> None:
    codec = SessionCodec(derive(b"secret", PURPOSE))
    value = codec.encode(codec.new("alice"))
    assert codec.decode(value, now=time.time() + MAX_AGE - 60) is not None
    assert codec.decode(value, now=time.time() + MAX_AGE + 1) is None
