"""Traced gRPC servers and channels with the standard health service, and the deadlines every call uses."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, Final

import grpc
import uvloop
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from smith_telemetry import client_interceptors, server_interceptors, setup_tracing
from smith_telemetry.logs import setup_logging
from smith_telemetry.metrics import metrics_address, serve_http

from smith_kube import KubeClient, KubeConfig
from smith_kube.reviews import token_user
from smith_wire.trust import (
    TLS_DIR,
    ClientTrust,
    Insecure,
    Review,
    ServerTrust,
    audience,
    callers_from_env,
    insecure_requested,
    target_of,
    warn_insecure,
)

# Every call has a deadline (seconds). Apply covers a server-side apply per object, run concurrently.
PLAN_DEADLINE: Final = 10.0
ASSESS_DEADLINE: Final = 10.0
APPLY_DEADLINE: Final = 30.0
REPORT_DEADLINE: Final = 15.0

Register = Callable[[grpc.aio.Server], None]


async def start_server(
    registrations: Sequence[Register],
    *,
    trust: ServerTrust | Insecure,
    address: str = "127.0.0.1:0",
    service: str = "smith",
) -> tuple[grpc.aio.Server, int]:
    """Start a traced server with `registrations` and the gRPC health service; returns it and its port.
    With ServerTrust it serves TLS and answers only its expected callers (health checks: anyone)."""
    options = [
        ("grpc.max_connection_age_ms", MAX_CONNECTION_AGE_MS),
        ("grpc.max_connection_age_grace_ms", 30_000),
    ]
    checks = [] if isinstance(trust, Insecure) else [trust.interceptor(service)]
    server = grpc.aio.server(interceptors=[*checks, *server_interceptors()], options=options)
    for register in registrations:
        register(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if isinstance(trust, Insecure):
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, trust.credentials())
    await server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    return server, port


# Every Smith call may be sent again: plans and assessments read, applies are server-side applies,
# deletes of what is gone succeed, a status report is written over the version it read. So a call that
# found its replica gone (UNAVAILABLE: refused, reset, shut down) is retried, on the next replica.
SERVICE_CONFIG: Final = json.dumps(
    {
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [
            {
                "name": [{"service": f"smith.v1.{s}"} for s in ("Planner", "Status", "Executor", "Plugin")],
                "retryPolicy": {
                    "maxAttempts": 4,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "1s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ],
    }
)
# Servers close each connection after a while (gracefully), so that clients resolve the address again
# and spread over replicas added since.
MAX_CONNECTION_AGE_MS: Final = 5 * 60 * 1000


def channel(target: str, trust: ClientTrust | Insecure, server: str = "") -> grpc.aio.Channel:
    """A traced channel to `target`: `host:port`, or any gRPC name such as `dns:///name:port` (every
    address it resolves to: a headless Service's pods) or `ipv4:a:port,b:port`. Calls are spread over
    the addresses round-robin and retried on another when one is gone. With ClientTrust: TLS to a server
    whose certificate Smith's CA issued for the target's name, each call carrying the caller's token for
    that `server` (`planner`, `executor-core`, ...: smith_wire.trust.audience)."""
    options = [("grpc.service_config", SERVICE_CONFIG), ("grpc.enable_retries", 1)]
    if isinstance(trust, Insecure):
        return grpc.aio.insecure_channel(target, options=options, interceptors=client_interceptors())
    return grpc.aio.secure_channel(
        target, trust.credentials(server), options=options, interceptors=client_interceptors()
    )


def server_trust_from_env(kube: KubeClient, service: str) -> ServerTrust:
    """A service's trust as its Deployment sets it: $SMITH_TLS_DIR (tls.crt, tls.key), $SMITH_CALLERS
    (default: the controller's ServiceAccount in $SMITH_NAMESPACE), tokens of its own audience
    (`smith-executor-core` takes `smith.atlassian.com/executor-core`) reviewed with `kube`."""
    tls = Path(os.environ.get("SMITH_TLS_DIR", str(TLS_DIR)))
    namespace = os.environ.get("SMITH_NAMESPACE", "smith-system")
    return ServerTrust(
        cert=tls / "tls.crt",
        key=tls / "tls.key",
        callers=callers_from_env(namespace),
        review=reviewer(kube, audience(target_of(service))),
        audience=audience(target_of(service)),
    )


def reviewer(kube: KubeClient, audience: str) -> Review:
    """Tokens reviewed by the API server for `audience`."""

    async def review(token: str) -> str | None:
        return await token_user(kube, token, audiences=[audience])

    return review


def beside(address: str, offset: int = 1000) -> str:
    """The default metrics address of a service listening on `address`: same host, port + `offset`
    (port 0 stays 0: any free port)."""
    host, _, port = address.rpartition(":")
    return f"{host}:{int(port) + offset if int(port) else 0}"


def run_service(
    name: str,
    registrations: Sequence[Register],
    *,
    default_address: str,
    started: Callable[[int], Awaitable[None]] | None = None,
    stopping: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """The whole life of one gRPC service process: logging, tracing, serve on $SMITH_LISTEN
    (default `default_address`) with TLS and caller checks (see `server_trust_from_env`), metrics and
    probes on $SMITH_METRICS (default: the gRPC port + 1000), run `started(port)`, and on SIGTERM/SIGINT
    stop serving (calls in flight finish), then `stopping()`."""
    setup_logging(name)
    setup_tracing(name)

    async def serve() -> None:
        address = os.environ.get("SMITH_LISTEN", default_address)
        kube = None if insecure_requested() else KubeClient(KubeConfig.auto())
        trust: ServerTrust | Insecure = Insecure() if kube is None else server_trust_from_env(kube, name)
        if kube is None:
            warn_insecure(name)
        server, port = await start_server(registrations, trust=trust, address=address, service=name)
        logging.info("%s serving gRPC on port %d", name, port)
        http = None
        if (metrics := metrics_address(beside(address))) is not None:
            http, metrics_port = await serve_http(metrics)
            logging.info("%s serving metrics and probes on port %d", name, metrics_port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if started is not None:
            await started(port)
        await stop.wait()
        # calls in flight finish first (new ones are refused: the caller retries elsewhere), then the
        # service lets go of what they used (a status report reading its Bundle over a closed client
        # raised "Session is closed")
        await server.stop(grace=2)
        if stopping is not None:
            await stopping()
        if http is not None:
            await http.cleanup()
        if kube is not None:
            await kube.close()

    run_loop(serve())


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run a service's `main` on the event loop $SMITH_EVENT_LOOP names: `uvloop` (the default; libuv's)
    or `asyncio` (the standard library's). `make bench` measures one against the other."""
    if os.environ.get("SMITH_EVENT_LOOP", "uvloop") == "asyncio":
        asyncio.run(main)
    else:
        uvloop.run(main)
