"""Every gRPC call is a span on both sides, the server's a child of the caller's, with its status; a call
that fails is counted (smith_telemetry.calls, over a real loopback gRPC server)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY
from smith_telemetry import client_interceptors, server_interceptors, setup_tracing

SAY = "/test.Echo/Say"


async def say(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    if request == b"no":
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "refused on purpose")
    return request


@pytest.fixture
async def echo() -> AsyncIterator[tuple[grpc.aio.Channel, InMemorySpanExporter]]:
    spans = InMemorySpanExporter()
    setup_tracing("test", processors=[SimpleSpanProcessor(spans)])
    server = grpc.aio.server(interceptors=server_interceptors())
    handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(say)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("test.Echo", {"Say": handler})])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", interceptors=client_interceptors()) as channel:
        yield channel, spans
    await server.stop(None)


def failures(code: str) -> float:
    return REGISTRY.get_sample_value("smith_grpc_client_errors_total", {"method": SAY, "code": code}) or 0.0


async def test_a_call_is_a_client_span_with_the_server_span_under_it(echo: Any) -> None:
    channel, spans = echo
    with trace.get_tracer("test").start_as_current_span("caller") as caller:
        assert await channel.unary_unary(SAY)(b"hello") == b"hello"
    mine = [s for s in spans.get_finished_spans() if s.context.trace_id == caller.get_span_context().trace_id]
    (client,) = [s for s in mine if s.kind == trace.SpanKind.CLIENT]
    (server,) = [s for s in mine if s.kind == trace.SpanKind.SERVER]
    assert client.name == server.name == SAY
    assert client.parent is not None
    assert client.parent.span_id == caller.get_span_context().span_id
    assert server.parent is not None
    assert server.parent.span_id == client.context.span_id
    assert dict(server.attributes or {}) == {
        "rpc.system": "grpc",
        "rpc.service": "test.Echo",
        "rpc.method": "Say",
        "rpc.grpc.status_code": 0,
    }
    assert client.status.status_code == trace.StatusCode.UNSET


async def test_a_refused_call_is_an_error_on_both_sides_and_counted(echo: Any) -> None:
    channel, spans = echo
    before = failures("FAILED_PRECONDITION")
    with (
        trace.get_tracer("test").start_as_current_span("caller") as caller,
        pytest.raises(grpc.aio.AioRpcError) as refused,
    ):
        await channel.unary_unary(SAY)(b"no")
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    mine = [s for s in spans.get_finished_spans() if s.context.trace_id == caller.get_span_context().trace_id]
    calls = [s for s in mine if s.name == SAY]
    assert {s.kind for s in calls} == {trace.SpanKind.CLIENT, trace.SpanKind.SERVER}
    for span in calls:
        assert span.status.status_code == trace.StatusCode.ERROR
        assert span.status.description == "FAILED_PRECONDITION: refused on purpose"
        assert (span.attributes or {})["rpc.grpc.status_code"] == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    assert failures("FAILED_PRECONDITION") == before + 1
