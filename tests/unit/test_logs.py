"""log.formatter: text lines with key=value fields, or one JSON object per line."""

from __future__ import annotations

import json
import logging
import sys

from registry.logs import JSONFormatter, TextFormatter


def _record(fields: dict[str, object] | None = None) -> logging.LogRecord:
    record = logging.LogRecord("berth.access", logging.INFO, __file__, 1, "GET %s", ("/v2/",), None)
    if fields is not None:
        record.fields = fields
    return record


def test_json_line_merges_static_and_record_fields() -> None:
    line = JSONFormatter({"service": "registry"}).format(_record({"status": 200, "user": "a"}))
    parsed = json.loads(line)
    assert parsed["msg"] == "GET /v2/"
    assert parsed["level"] == "info"
    assert parsed["logger"] == "berth.access"
    assert (parsed["service"], parsed["status"], parsed["user"]) == ("registry", 200, "a")
    assert parsed["time"].endswith("+00:00")


def test_json_line_carries_the_traceback_in_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = _record()
        record.exc_info = sys.exc_info()
    line = JSONFormatter().format(record)
    assert "\n" not in line
    assert "ValueError: boom" in json.loads(line)["error"]


def test_text_line_appends_fields() -> None:
    line = TextFormatter({"env": "prod"}).format(_record({"status": 404}))
    assert line.endswith("berth.access: GET /v2/ env=prod status=404")
