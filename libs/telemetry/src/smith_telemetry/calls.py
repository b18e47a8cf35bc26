"""Every gRPC call a span, on both sides, in one trace: the caller's span (CLIENT) carries its context in
the call's metadata (W3C `traceparent`), and the server's span (SERVER) is its child. Spans are named by
the method (`/smith.v1.Planner/Plan`) with OpenTelemetry's `rpc.*` attributes.

Written here rather than taken from opentelemetry-instrumentation-grpc: Smith's calls are all unary, and
that package (with `packaging`, `wrapt` and its entry-point scan) cost every process ~3 MiB for them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

import grpc
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from smith_telemetry.metrics import GRPC_ERRORS

_tracer: Final = trace.get_tracer("smith_telemetry.calls")


def _attributes(method: str) -> dict[str, str]:
    service, _, name = method.lstrip("/").partition("/")
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}


def _ended(span: trace.Span, code: grpc.StatusCode, details: str | None) -> None:
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code != grpc.StatusCode.OK:
        span.set_status(Status(StatusCode.ERROR, f"{code.name}: {details or ''}".rstrip(": ")))


class ClientCalls(grpc.aio.UnaryUnaryClientInterceptor):
    """The caller's span of each unary call, its context sent along; a call that does not end OK is
    counted in smith_grpc_client_errors_total{method,code}."""

    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        raw = client_call_details.method
        method = raw.decode() if isinstance(raw, bytes) else str(raw)
        with _tracer.start_as_current_span(
            method, kind=SpanKind.CLIENT, attributes=_attributes(method), record_exception=False
        ) as span:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            metadata = grpc.aio.Metadata(*(client_call_details.metadata or ()), *carrier.items())
            details = grpc.aio.ClientCallDetails(
                client_call_details.method,
                client_call_details.timeout,
                metadata,
                client_call_details.credentials,
                client_call_details.wait_for_ready,
            )
            call = await continuation(details, request)
            code = await call.code()
            _ended(span, code, await call.details())
            if code != grpc.StatusCode.OK:
                GRPC_ERRORS.labels(method=method, code=code.name).inc()
            return call


class ServerCalls(grpc.aio.ServerInterceptor):
    """The server's span of each unary call, a child of the caller's span when the call carries one."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler  # health's Watch, the one stream: not traced
        behaviour, method = handler.unary_unary, details.method
        carrier = {k: v for k, v in details.invocation_metadata or () if isinstance(v, str)}

        async def traced(request: Any, context: Any) -> Any:  # grpc.aio.ServicerContext
            with _tracer.start_as_current_span(
                method,
                context=propagate.extract(carrier),
                kind=SpanKind.SERVER,
                attributes=_attributes(method),
                record_exception=False,
                set_status_on_exception=False,
            ) as span:
                try:
                    response = await behaviour(request, context)
                except BaseException:
                    _ended(span, context.code() or grpc.StatusCode.UNKNOWN, context.details())
                    raise
                _ended(span, context.code() or grpc.StatusCode.OK, context.details())
                return response

        return grpc.unary_unary_rpc_method_handler(
            traced,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
