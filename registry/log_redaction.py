"""Keep secrets out of log lines: credentials, tokens and signed URLs, whoever logs them.

`install()` (called by `berth serve` before anything is logged) wraps the log record factory,
so every record of every logger has its message and traceback text redacted before any
handler sees it, whichever handler or formatter is configured later; aiohttp's own errors
included, which quote what they failed to parse (an oversized `Authorization` header, say).
aiohttp's access logger also attaches request fields as record attributes after the record
is made; a filter on that logger redacts those. Structured `fields` are redacted by
registry.logs' formatters as they write them, except the access log's, which
registry.http.observe redacts as it makes them (it also bypasses the record factory). Code that
shows a URL or a header outside logging (a CLI message) calls `redact()` itself.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Final

__all__ = ["install", "redact"]

REDACTED: Final = "<redacted>"
_SECRET_PARAMS: Final = (
    "access_token|refresh_token|id_token|token|password|passwd|secret|client_secret|sig"
    "|signature|x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature"
    "|x-goog-credential"
)
# (substrings of the lowercased text without which the rule cannot match, pattern, replacement):
# the substring checks keep an ordinary access log line to a microsecond.
_RULES: Final = (
    # An Authorization value, also when aiohttp quotes it as bytes: b'Bearer eyJ...'
    (
        ("basic", "bearer"),
        re.compile(r"(?i)\b(basic|bearer)(\s+)[^\s'\",]{4,}"),
        rf"\1\2{REDACTED}",
    ),
    # A JWT anywhere (header and claims are base64url JSON objects: "eyJ...")
    (("eyj",), re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),
    # Secret query or form parameters: ?access_token=..., presigned URLs' signatures
    (("=",), re.compile(rf"(?i)([?&;](?:{_SECRET_PARAMS})=)[^&\s'\"]*"), rf"\1{REDACTED}"),
    # user:password@host in URLs (database URLs, upstream registries)
    (("@",), re.compile(r"(//[^/:@\s'\"]+:)[^@/\s'\"]+@"), rf"\1{REDACTED}@"),
)
# Every needle above. Most texts (an access log's fields) contain none of them; substring
# tests find that in a tenth of the time of one case-insensitive regex of them all.
_NEEDLES: Final = tuple(dict.fromkeys(needle for needles, _, _ in _RULES for needle in needles))
_STANDARD_ATTRIBUTES: Final = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_installed = False


def redact(text: str) -> str:
    """`text` with every credential, token and signature it contains replaced."""
    lowered = text.lower()
    for needle in _NEEDLES:
        if needle in lowered:
            break
    else:
        return text
    for needles, pattern, replacement in _RULES:
        if any(needle in lowered for needle in needles):
            text = pattern.sub(replacement, text)
    return text


def _scrub(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001  (a bad format string: logging reports it when it formats)
        return
    clean = redact(message)
    if clean != message:
        record.msg, record.args = clean, None
    if record.exc_info and not record.exc_text:
        text = logging.Formatter().formatException(record.exc_info)
        clean = redact(text)
        if clean != text:
            record.exc_text = clean  # formatters use this cached text instead of formatting


class _RedactAttributes(logging.Filter):
    """For loggers that set request fields as record attributes (aiohttp.access): redact the string
    fields, and the strings of dict fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in vars(record).items():
            if key in _STANDARD_ATTRIBUTES:
                continue
            if isinstance(value, str):
                setattr(record, key, redact(value))
            elif isinstance(value, dict):  # %{Header}i fields: {"Authorization": "..."}
                clean = {k: redact(v) if isinstance(v, str) else v for k, v in value.items()}
                setattr(record, key, clean)
        return True


def install() -> None:
    """Redact every log record from now on, in this process and the processes it forks."""
    global _installed
    if _installed:
        return
    _installed = True
    make_record = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        _scrub(record)
        return record

    logging.setLogRecordFactory(factory)
    logging.getLogger("aiohttp.access").addFilter(_RedactAttributes())
