"""log.formatter: text lines with key=value fields, or one JSON object per line."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import sys

from registry.logs import (
    JSONFormatter,
    LoopBatchingHandler,
    RedactedFields,
    TextFormatter,
    deliver,
    quick_record,
)


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


def test_text_fields_of_any_kind_are_written_as_text_line_after_line() -> None:
    formatter = TextFormatter({"share": "50%"})
    fields: dict[str, object] = {
        "bytes": 0,
        "duration": 0.000213,
        "user": None,
        "tags": ["a", "b"],
        "format": "%s%d",
        "odd%key": True,
    }
    expected = (
        "share=50% bytes=0 duration=0.000213 user=None tags=['a', 'b'] format=%s%d odd%key=True"
    )
    for _ in range(2):  # the second line of one kind formats as the first did
        assert formatter.format(_record(fields)).endswith(f"GET /v2/ {expected}")
    assert formatter.format(_record({"status": 200})).endswith("GET /v2/ share=50% status=200")


async def test_lines_of_one_loop_iteration_go_out_in_one_write() -> None:
    writes: list[str] = []

    class Stream(io.StringIO):
        def write(self, text: str) -> int:
            writes.append(text)
            return len(text)

    handler = LoopBatchingHandler(Stream())
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger("test.batching")
    log.addHandler(handler)
    log.propagate = False
    try:
        for i in range(3):
            log.warning("line %d", i)
        assert writes == []  # held until the loop comes round
        await asyncio.sleep(0)
        assert writes == ["line 0\nline 1\nline 2\n"]
        log.warning("last")
        handler.flush()  # what a worker does as it exits
        assert writes[-1] == "last\n"
        await asyncio.to_thread(log.warning, "from a thread")  # no loop there: at once
        assert writes[-1] == "from a thread\n"
    finally:
        log.removeHandler(handler)


def test_a_quick_record_reaches_the_handler_or_every_handler() -> None:
    """The access log's record is delivered straight to the configured handler when it is the
    only one, and the usual way when anything else listens (a test capturing logs)."""
    stream = io.StringIO()
    handler = LoopBatchingHandler(stream)
    handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    log = logging.getLogger("berth.access")
    try:
        fields = RedactedFields(path="/v2/a/manifests/b", status=200)
        deliver(log, quick_record(log, logging.INFO, "GET %s %d", ("/v2/x", 200), fields))
        line = stream.getvalue()
        assert " INFO berth.access: GET /v2/x 200 path=/v2/a/manifests/b status=200\n" in line
        assert line.split(" ")[2] == str(os.getpid())
        captured: list[logging.LogRecord] = []

        class Listener(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                captured.append(record)

        root.addHandler(Listener())
        deliver(log, quick_record(log, logging.INFO, "second", (), RedactedFields()))
        assert [r.getMessage() for r in captured] == ["second"]
        assert stream.getvalue().endswith("berth.access: second\n")
    finally:
        root.handlers[:] = saved
        root.setLevel(level)
