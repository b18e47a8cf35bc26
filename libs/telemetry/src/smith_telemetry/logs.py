"""Logging for Smith's services: one JSON object per line when stderr is not a terminal (plain text on
a terminal), each with the trace and span id of the current span so a log line leads to its trace.

Structured fields go in `extra={"fields": {...}}`."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any, Final

from opentelemetry import trace


def _trace_ids(record: logging.LogRecord | None = None) -> dict[str, str]:
    """The ids a record was stamped with (see TraceIds), else those of the current span."""
    stamped = getattr(record, "trace_ids", None)
    if stamped is not None:
        return dict(stamped)
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": format(context.trace_id, "032x"), "span_id": format(context.span_id, "016x")}


class TraceIds(logging.Filter):
    """Stamps each record with the trace and span id of the span it was logged in, for handlers that
    format it later (or elsewhere) than where it was logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.trace_ids = _trace_ids()
        return True


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
            **_trace_ids(record),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__(f"%(asctime)s {service} %(levelname)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ids = _trace_ids(record)
        return f"{text} trace={ids['trace_id']}" if ids else text


# $SMITH_LOG_LEVEL's values: Go Smith's `-log-level` (debug, info, warn, error) and Python's names.
LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def log_level(text: str | None) -> int:
    """The level $SMITH_LOG_LEVEL names (unset or empty: info). Raises ValueError naming the choices."""
    if not text:
        return logging.INFO
    if (level := LEVELS.get(text.strip().lower())) is None:
        raise ValueError(f"SMITH_LOG_LEVEL={text!r} is not a level: use one of {', '.join(LEVELS)}")
    return level


def setup_logging(service: str, *, json_lines: bool | None = None, level: int | None = None) -> None:
    """Log to stderr: JSON lines unless stderr is a terminal (or `json_lines` says otherwise), at
    `level` (default: $SMITH_LOG_LEVEL's, else info). A level that is not one fails the start, saying so."""
    as_json = not sys.stderr.isatty() if json_lines is None else json_lines
    handler = logging.StreamHandler()
    handler.addFilter(TraceIds())
    handler.setFormatter(JsonFormatter(service) if as_json else TextFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level if level is not None else log_level(os.environ.get("SMITH_LOG_LEVEL")))
