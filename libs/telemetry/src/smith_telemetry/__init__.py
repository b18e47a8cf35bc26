"""Tracing for Smith's services, configured only by the standard OTEL_* environment variables.

`OTEL_TRACES_EXPORTER`: `otlp` (protocol from `OTEL_EXPORTER_OTLP_PROTOCOL`: `grpc` or `http/protobuf`),
`console`, or `none` (the default: spans are still made and propagated, just not exported).
Sampling: `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`, read by the SDK itself.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import grpc
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

_configured = False


def _exporter() -> SpanExporter | None:
    name = os.environ.get("OTEL_TRACES_EXPORTER", "none").strip().lower()
    if name == "console":
        return ConsoleSpanExporter()
    if name == "otlp":
        protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
            "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"
        )
        if protocol.startswith("http"):
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

            return HttpExporter()
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter()
    return None


def setup_tracing(service_name: str, *, processors: Sequence[SpanProcessor] = ()) -> None:
    """Install a tracer provider for this process once (`OTEL_SERVICE_NAME` wins over `service_name`).

    `processors` adds span processors (tests pass an in-memory exporter's processor).
    """
    global _configured
    if _configured:
        provider = trace.get_tracer_provider()
        if isinstance(provider, TracerProvider):
            for processor in processors:
                provider.add_span_processor(processor)
        return
    name = os.environ.get("OTEL_SERVICE_NAME", service_name)
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    if (exporter := _exporter()) is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    for processor in processors:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    _configured = True


def server_interceptors() -> list[grpc.aio.ServerInterceptor]:
    from smith_telemetry.calls import ServerCalls

    return [ServerCalls()]


def client_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """Tracing, and counting failed calls (smith_grpc_client_errors_total)."""
    from smith_telemetry.calls import ClientCalls

    return [ClientCalls()]


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)
