"""What `registry.log_redaction` removes from a log line, and what it leaves."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from registry import log_redaction
from registry.log_redaction import redact

JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("Got more than 8190 bytes when reading: b'Bearer abcdefSECRET...'.", "abcdefSECRET"),
        ("Authorization: Basic YWxpY2U6cGFzc3dvcmQ=", "YWxpY2U6cGFzc3dvcmQ="),
        (f'"GET /v2/?access_token={JWT} HTTP/1.1" 401', JWT),
        ('"GET /v2/x?n=1&token=T0KEN HTTP/1.1"', "T0KEN"),
        (f"refused {JWT[:-3]}", JWT[:-3]),
        (
            "https://b.s3.example/k?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=deadbeef&x=1",
            "deadbeef",
        ),
        ("https://b.s3.example/k?X-Amz-Credential=AKIA123&X-Amz-Date=1", "AKIA123"),
        ("postgresql+asyncpg://berth:hunter2@db:5432/registry", "hunter2"),
    ],
)
def test_secrets_are_replaced(line: str, secret: str) -> None:
    clean = redact(line)
    assert secret not in clean
    assert "<redacted>" in clean


@pytest.mark.parametrize(
    "line",
    [
        '127.0.0.1 "GET /v2/team/app/manifests/latest HTTP/1.1" 200 1234 "-" "docker/24"',
        "failed login: client 127.0.0.1, user 'alice'",
        "upload purging: purged 3 abandoned upload(s)",
        "http://127.0.0.1:5000/v2/_catalog?n=10&last=abc",
    ],
)
def test_ordinary_lines_are_untouched(line: str) -> None:
    assert redact(line) == line


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    factory = logging.getLogRecordFactory()
    monkeypatch.setattr(log_redaction, "_installed", False)
    log_redaction.install()
    try:
        yield
    finally:
        logging.setLogRecordFactory(factory)


@pytest.mark.usefixtures("installed")
def test_installed_redaction_covers_arguments_tracebacks_and_extras(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    logging.getLogger("tests.redaction").info("header %s", f"Bearer {JWT}")
    try:
        raise ValueError(f"cannot parse b'Bearer {JWT}'")
    except ValueError:
        logging.getLogger("aiohttp.server").exception("Error handling request")
    logging.getLogger("aiohttp.access").info(
        "%s", f"GET /v2/?access_token={JWT}", extra={"first_request_line": f"?access_token={JWT}"}
    )
    assert JWT not in caplog.text
    for record in caplog.records:
        assert JWT not in record.getMessage()
        assert JWT not in (record.exc_text or "")
        assert JWT not in getattr(record, "first_request_line", "")
    assert caplog.text.count("<redacted>") >= 3
