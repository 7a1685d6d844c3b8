"""Session cookies and the secret that signs them."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest

from registry.config import ConfigError
from registry.ui.secret import SECRET_FILE, http_secret
from registry.ui.session import MAX_AGE, SessionCodec


def test_a_session_survives_encoding_and_nothing_else_does() -> None:
    codec = SessionCodec(b"secret")
    session = codec.new("alice")
    value = codec.encode(session)
    assert codec.decode(value) == session
    assert SessionCodec(b"other").decode(value) is None
    body, _, mac = value.partition(".")
    forged = codec.encode(codec.new("admin")).partition(".")[0]
    assert codec.decode(f"{forged}.{mac}") is None
    for junk in ("", ".", "a.b", "!!!.???", body):
        assert codec.decode(junk) is None


def test_a_session_expires() -> None:
    codec = SessionCodec(b"secret")
    value = codec.encode(codec.new("alice"))
    assert codec.decode(value, now=time.time() + MAX_AGE - 60) is not None
    assert codec.decode(value, now=time.time() + MAX_AGE + 1) is None


def test_without_http_secret_one_is_kept_in_the_data_dir(tmp_path: Path) -> None:
    first = http_secret("", tmp_path)
    assert http_secret("", tmp_path) == first  # every worker reads the same one
    path = tmp_path / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) == 64
    assert http_secret("configured", tmp_path) == b"configured"
    assert [p.name for p in tmp_path.iterdir()] == [SECRET_FILE]  # no temporary files left


def test_an_empty_secret_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / SECRET_FILE).write_text("")
    with pytest.raises(ConfigError, match="http-secret is empty"):
        http_secret("", tmp_path)
