"""Log lines as `log.formatter` asks: `text` for people, `json` (one object a line) for machines.

A record's structured fields travel as `extra={"fields": {...}}`; the text formatter appends
them as key=value, the JSON one merges them into the object, with `log.fields` on every line.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from registry import process_id
from registry.config import LogConfig
from registry.log_redaction import redact

TEXT_FORMAT: Final = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"


def configure(config: LogConfig) -> None:
    """Send the root logger's records to stderr in `config.formatter` at `config.level`."""
    handler = LoopBatchingHandler(sys.stderr)
    if config.formatter == "json":
        handler.setFormatter(JSONFormatter(config.fields))
    else:
        handler.setFormatter(TextFormatter(config.fields))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(config.level.upper())
    # No format here shows threads: each record would look them up for nothing.
    logging.logThreads = False
    logging.logMultiprocessing = False


def flush() -> None:
    """Write what the root logger's handlers hold (before a worker exits)."""
    for handler in logging.getLogger().handlers:
        handler.flush()


class LoopBatchingHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that, on an event loop's thread, writes the lines of one loop
    iteration in one write: a busy server's access log is a line per request, and a write per
    line cost a blob HEAD ~8% of its CPU. Lines from other threads are written at once."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._batch: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:  # noqa: BLE001  (logging reports its own failures)
            self.handleError(record)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._write(line)
            return
        if not self._batch:
            loop.call_soon(self.flush)
        self._batch.append(line)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # made by Handler.__init__
            self._write("")
            super().flush()

    def _write(self, line: str) -> None:
        text = "".join(self._batch) + line if self._batch else line
        self._batch.clear()
        if text:
            try:
                self.stream.write(text)
                self.stream.flush()
            except Exception:  # noqa: BLE001
                self.handleError(logging.makeLogRecord({"msg": text}))


def quick_record(
    logger: logging.Logger, level: int, msg: str, args: tuple[Any, ...], fields: RedactedFields
) -> logging.LogRecord:
    """A record for `logger`, made without LogRecord.__init__'s per-record lookups (the
    source file, thread and process names no format shows): for the access log, a line per
    request."""
    record = logging.LogRecord.__new__(logging.LogRecord)
    record.__dict__.update(_template(logger.name, level, process_id.current()))
    now = time.time()
    record.created = now
    record.msecs = int((now - int(now)) * 1000) + 0.0
    record.relativeCreated = (now - _START) * 1000
    record.msg, record.args = msg, args
    record.fields = fields
    return record


_START: Final = time.time()


@functools.lru_cache(maxsize=64)
def _template(name: str, level: int, pid: int) -> dict[str, Any]:
    return vars(logging.LogRecord(name, level, "", 0, "", None, None)) | {"process": pid}


def deliver(logger: logging.Logger, record: logging.LogRecord) -> None:
    """`logger.handle(record)`, straight to the handler when the configured one (this module's,
    no filters) is the only one the record would reach: the usual case, where the logging
    module's walk of loggers, filters and handlers costs a busy access log more than the line
    itself. Anything else (a test capturing logs, a handler added later) goes the usual way."""
    handlers = logging.root.handlers
    handler = handlers[0] if len(handlers) == 1 else None
    if (
        type(handler) is LoopBatchingHandler
        and not handler.filters
        and record.levelno >= handler.level
        and not logger.disabled
        and not logger.filters
        and _reaches_only_root(logger)
    ):
        with handler.lock:  # type: ignore[union-attr]  # made by Handler.__init__
            handler.emit(record)
        return
    logger.handle(record)


def _reaches_only_root(logger: logging.Logger) -> bool:
    node: logging.Logger | None = logger
    while node is not None and node is not logging.root:
        if node.handlers or not node.propagate:
            return False
        node = node.parent
    return True


class RedactedFields(dict[str, Any]):
    """A record's `fields` whose strings its maker has already redacted (the access log's)."""


def _fields(record: logging.LogRecord) -> Mapping[str, Any]:
    """The record's `extra={"fields": ...}`, strings redacted (they come after the record
    factory that redacts the message has run)."""
    fields = getattr(record, "fields", None)
    if isinstance(fields, RedactedFields):
        return fields
    if not isinstance(fields, Mapping):
        return {}
    return {k: redact(v) if isinstance(v, str) else v for k, v in fields.items()}


class TextFormatter(logging.Formatter):
    def __init__(self, static: Mapping[str, Any] | None = None) -> None:
        super().__init__(TEXT_FORMAT)
        self._static = dict(static or {})
        self._second = -1
        self._second_text = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        # strftime once a second, not once a line: a busy access log writes thousands a second.
        second = int(record.created)
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%d %H:%M:%S", self.converter(second))
            self._second = second
        return f"{self._second_text},{int(record.msecs):03d}"

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info or record.exc_text or record.stack_info:
            line = super().format(record)
        else:  # TEXT_FORMAT, without the Formatter's generic machinery (most lines)
            record.message = record.getMessage()
            line = (
                f"{self.formatTime(record)} {record.process} {record.levelname} "
                f"{record.name}: {record.message}"
            )
        pairs = {**self._static, **_fields(record)} if self._static else _fields(record)
        if not pairs:
            return line
        head, sep, tail = line.partition("\n")  # key=value stays on the first line
        extra = _pairs_format(tuple(pairs)) % tuple(pairs.values())
        return f"{head} {extra}{sep}{tail}"


@functools.lru_cache(maxsize=256)
def _pairs_format(keys: tuple[str, ...]) -> str:
    """`k1=%s k2=%s ...`: records of one kind (every access log line) carry the same keys,
    and one %-format of all the values costs less than a `k=v` string made for each (an
    access log line took 15-17 µs instead of 17-22)."""
    return " ".join(f"{key.replace('%', '%%')}=%s" for key in keys)


class JSONFormatter(logging.Formatter):
    def __init__(self, static: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self._static = dict(static or {})

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "msg": record.getMessage(),
            **self._static,
            **_fields(record),
        }
        if record.exc_info:
            # exc_text is the traceback log_redaction already redacted, when it had to
            line["error"] = record.exc_text or redact(self.formatException(record.exc_info))
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str)
