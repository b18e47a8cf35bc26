"""Prometheus metrics and health probes over HTTP, one small server per service process:
`/metrics` (Prometheus text), `/healthz` (the process is alive), `/readyz` (it can do its job).

Address from $SMITH_METRICS (`host:port`; `off` serves nothing); each service has its own default."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from http import HTTPStatus

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, generate_latest

GRPC_ERRORS = Counter(
    "smith_grpc_client_errors",
    "gRPC calls that did not succeed, by method and status code",
    ["method", "code"],
)

Ready = Callable[[], bool]


def metrics_address(default: str) -> str | None:
    """Where to serve: $SMITH_METRICS, else `default`; None when it is `off`."""
    address = os.environ.get("SMITH_METRICS", default)
    return None if address == "off" else address


class HttpServer:
    """The probes' and metrics' HTTP server: HTTP/1.1, GET only, one answer per connection.

    Written on asyncio's streams rather than aiohttp.web: three fixed pages need no framework, and
    not importing one saves every service process ~4 MiB."""

    def __init__(self, ready: Ready) -> None:
        self.ready = ready
        self._server: asyncio.Server | None = None

    async def start(self, address: str) -> int:
        host, _, port = address.rpartition(":")
        self._server = await asyncio.start_server(self._answer, host or "0.0.0.0", int(port))
        return int(self._server.sockets[0].getsockname()[1])

    async def cleanup(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def page(self, method: str, path: str) -> tuple[int, str, bytes]:
        """The status, content type and body for a request."""
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"GET only\n"
        path = path.split("?", 1)[0]
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(REGISTRY)
        if path == "/healthz":
            return 200, "text/plain", b"ok\n"
        if path == "/readyz":
            return (200, "text/plain", b"ready\n") if self.ready() else (503, "text/plain", b"not ready\n")
        return 404, "text/plain", b"not found\n"

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_SECONDS)
            method, path, *_ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            status, kind, body = self.page(method, path)
            reason = HTTPStatus(status).phrase
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + (body if method != "HEAD" else b"")
            )
            await writer.drain()
        except (
            TimeoutError,
            ValueError,
            ConnectionError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
        ):
            pass  # a slow, malformed or vanished client gets no answer
        finally:
            writer.close()


HEAD_SECONDS = 10  # how long a client may take to send its request's head


async def serve_http(address: str, *, ready: Ready = lambda: True) -> tuple[HttpServer, int]:
    """Serve /metrics, /healthz and /readyz on `address` (`host:port`, port 0 for any free one)."""
    server = HttpServer(ready)
    return server, await server.start(address)
