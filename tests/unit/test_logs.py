"""Structured logs: one JSON object per line, with the trace id of the span the line was logged in."""

from __future__ import annotations

import io
import json
import logging

import pytest
from opentelemetry.sdk.trace import TracerProvider
from smith_telemetry.logs import JsonFormatter, TextFormatter, TraceIds, log_level, setup_logging


def logged(formatter: logging.Formatter, emit: object = None) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("smith.test.logs")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("reconcile ns/b") as span:
        logger.info(
            "created %s", "ConfigMap ns/a", extra={"fields": {"bundle": "ns/b", "outcome": "Created"}}
        )
        trace_id = format(span.get_span_context().trace_id, "032x")
    logger.info("outside any span")
    return stream.getvalue() + trace_id


def test_json_lines_carry_message_fields_and_the_current_trace_id() -> None:
    *lines, trace_id = logged(JsonFormatter("smith-executor-core")).split("\n")
    inside, outside = (json.loads(line) for line in lines)
    assert inside["message"] == "created ConfigMap ns/a"
    assert inside["service"] == "smith-executor-core"
    assert inside["level"] == "info"
    assert (inside["bundle"], inside["outcome"]) == ("ns/b", "Created")
    assert inside["trace_id"] == trace_id
    assert len(inside["span_id"]) == 16
    assert "trace_id" not in outside


def test_text_lines_on_a_terminal_end_with_the_trace_id() -> None:
    *lines, trace_id = logged(TextFormatter("smith-status")).split("\n")
    assert lines[0].endswith(f"created ConfigMap ns/a trace={trace_id}")
    assert "trace=" not in lines[1]


def test_a_record_stamped_in_its_span_keeps_the_trace_id_when_formatted_later() -> None:
    tracer = TracerProvider().get_tracer("test")
    record = logging.LogRecord("smith.executor", logging.INFO, __file__, 1, "deleted %s", ("x",), None)
    with tracer.start_as_current_span("delete") as span:
        TraceIds().filter(record)
        trace_id = format(span.get_span_context().trace_id, "032x")
    assert json.loads(JsonFormatter("smith-executor-core").format(record))["trace_id"] == trace_id


@pytest.mark.parametrize(
    ("text", "level"),
    [
        (None, logging.INFO),
        ("", logging.INFO),
        ("debug", logging.DEBUG),
        ("warn", logging.WARNING),
        ("WARNING", logging.WARNING),
        ("error", logging.ERROR),
    ],
)
def test_the_log_level_is_go_smiths_flag_or_pythons_name(text: str | None, level: int) -> None:
    assert log_level(text) == level


def test_a_level_that_is_not_one_fails_saying_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(
        ValueError, match="SMITH_LOG_LEVEL='loud' is not a level: use one of debug, info, warn"
    ):
        log_level("loud")
    root = logging.getLogger()
    handlers, before = root.handlers[:], root.level
    monkeypatch.setenv("SMITH_LOG_LEVEL", "debug")
    try:
        setup_logging("smith-test")
        assert root.level == logging.DEBUG
    finally:
        root.handlers[:], root.level = handlers, before
