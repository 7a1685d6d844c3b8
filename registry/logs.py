"""Log lines as `log.formatter` asks: `text` for people, `json` (one object a line) for machines.

A record's structured fields travel as `extra={"fields": {...}}`; the text formatter appends
them as key=value, the JSON one merges them into the object, with `log.fields` on every line.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from registry.config import LogConfig

TEXT_FORMAT: Final = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"


def configure(config: LogConfig) -> None:
    """Send the root logger's records to stderr in `config.formatter` at `config.level`."""
    handler = logging.StreamHandler(sys.stderr)
    if config.formatter == "json":
        handler.setFormatter(JSONFormatter(config.fields))
    else:
        handler.setFormatter(TextFormatter(config.fields))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(config.level.upper())


def _fields(record: logging.LogRecord) -> Mapping[str, Any]:
    fields = getattr(record, "fields", None)
    return fields if isinstance(fields, Mapping) else {}


class TextFormatter(logging.Formatter):
    def __init__(self, static: Mapping[str, Any] | None = None) -> None:
        super().__init__(TEXT_FORMAT)
        self._static = dict(static or {})

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        pairs = {**self._static, **_fields(record)}
        if not pairs:
            return line
        head, sep, tail = line.partition("\n")  # key=value stays on the first line
        extra = " ".join(f"{k}={v}" for k, v in pairs.items())
        return f"{head} {extra}{sep}{tail}"


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
            line["error"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str)
