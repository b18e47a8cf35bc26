"""Prometheus metrics and health probes over HTTP, one small server per service process:
`/metrics` (Prometheus text), `/healthz` (the process is alive), `/readyz` (it can do its job).

Address from $SMITH_METRICS (`host:port`; `off` serves nothing); each service has its own default."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, generate_latest

GRPC_ERRORS = Counter(
    "smith_grpc_client_errors",
    "gRPC calls that did not succeed, by method and status code",
    ["method", "code"],
)

Ready = Callable[[], bool]


class ErrorCounter(grpc.aio.UnaryUnaryClientInterceptor):
    """Counts every unary call that ends with a status other than OK."""

    async def intercept_unary_unary(
        self,
        continuation: Callable[[Any, Any], Awaitable[Any]],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        call = await continuation(client_call_details, request)
        code = await call.code()
        if code != grpc.StatusCode.OK:
            method = client_call_details.method
            name = method.decode() if isinstance(method, bytes) else str(method)
            GRPC_ERRORS.labels(method=name, code=code.name).inc()
        return call


def metrics_address(default: str) -> str | None:
    """Where to serve: $SMITH_METRICS, else `default`; None when it is `off`."""
    address = os.environ.get("SMITH_METRICS", default)
    return None if address == "off" else address


async def serve_http(address: str, *, ready: Ready = lambda: True) -> tuple[web.AppRunner, int]:
    """Serve /metrics, /healthz and /readyz on `address` (`host:port`, port 0 for any free one)."""

    async def metrics(_: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(REGISTRY))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        return web.Response(text="ready\n") if ready() else web.Response(status=503, text="not ready\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host, _, port = address.rpartition(":")
    site = web.TCPSite(runner, host or "0.0.0.0", int(port))
    await site.start()
    return runner, int(runner.addresses[0][1])
