"""Sampling is set by the standard OTEL_TRACES_SAMPLER variables, and a service follows its caller's decision.

Each case runs in its own interpreter: a process installs its tracer provider once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# A root span (the controller's reconcile) and a span under a remote, sampled parent (a service
# answering a traced gRPC call); prints which of the two were recorded.
SCRIPT = """
import json
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from smith_telemetry import setup_tracing, tracer

exporter = InMemorySpanExporter()
setup_tracing("smith-test", processors=[SimpleSpanProcessor(exporter)])
with tracer("test").start_as_current_span("reconcile"):
    pass
parent = trace.SpanContext(
    trace_id=0x1234, span_id=0x5678, is_remote=True, trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED)
)
caller = trace.set_span_in_context(trace.NonRecordingSpan(parent))
with tracer("test").start_as_current_span("apply", context=caller):
    pass
print(json.dumps(sorted(span.name for span in exporter.get_finished_spans())))
"""


def recorded(**env: str) -> list[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    result: list[str] = json.loads(out.stdout)
    return result


def test_every_reconcile_is_traced_by_default() -> None:
    assert recorded() == ["apply", "reconcile"]


def test_always_off_records_nothing() -> None:
    assert recorded(OTEL_TRACES_SAMPLER="always_off") == []


@pytest.mark.parametrize(("ratio", "spans"), [("0", ["apply"]), ("1", ["apply", "reconcile"])])
def test_a_ratio_samples_new_traces_while_services_follow_the_callers_decision(
    ratio: str, spans: list[str]
) -> None:
    assert recorded(OTEL_TRACES_SAMPLER="parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG=ratio) == spans
