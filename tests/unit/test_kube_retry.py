"""The API client sends again what a server turned away unprocessed — 429 Too Many Requests, or a 5xx
that says `Retry-After` — after the time asked for, and gives an error for any other failure at once;
every failure is a KubeError, a TransportError when no answer came (a real HTTP server on loopback
stands in for a throttling, failing or vanishing API server or proxy)."""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import yaml
from aiohttp import web

from smith_kube import ApiError, KubeClient, KubeConfig, KubeError, TransportError
from smith_kube.backoff import backoff
from smith_kube.client import RETRY_AFTER_MAX, retry_after


def test_what_is_sent_again_and_after_how_long() -> None:
    assert retry_after(429, "2") == 2
    assert retry_after(429, None) == 1  # no header: a second
    assert retry_after(429, "Wed, 21 Oct 2026 07:28:00 GMT") == 1  # a date: a second
    assert retry_after(503, "0.5") == 0.5
    assert retry_after(429, "3600") == RETRY_AFTER_MAX
    assert retry_after(503, None) is None  # a failure, not a request to come back
    assert retry_after(500, None) is None
    assert retry_after(409, "1") is None


@pytest_asyncio.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[KubeClient, list[tuple[str, float]], list[int]]]:
    """A server answering each request with the next status of `script` (then 200), logging arrivals."""
    arrivals: list[tuple[str, float]] = []
    script: list[int] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        arrivals.append((request.method, time.monotonic()))
        if request.query.get("watch"):  # one event, then the connection cut mid-stream
            cut = web.StreamResponse(headers={"Content-Type": "application/json"})
            await cut.prepare(request)
            await cut.write(b'{"type": "ADDED", "object": {"metadata": {"name": "a"}}}\n')
            assert request.transport is not None
            request.transport.abort()
            return cut
        if request.path.endswith("/slow"):
            await asyncio.sleep(1)
        if request.path == "/api/v1":  # discovery
            kinds = [{"name": "configmaps", "kind": "ConfigMap", "namespaced": True}]
            return web.json_response({"kind": "APIResourceList", "resources": kinds})
        status = script.pop(0) if script else 200
        headers = {"Retry-After": "0.3"} if status in (429, 503) else {}
        body = {"kind": "Status", "code": status} if status >= 400 else {"kind": "ConfigMap", "metadata": {}}
        return web.json_response(body, status=status, headers=headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    async with loopback_client(tmp_path, port) as kube:
        yield kube, arrivals, script
    await runner.cleanup()


def loopback_client(tmp_path: Path, port: int, *, timeout: float = 30.0) -> KubeClient:
    """A client of a plain-HTTP server on loopback `port`, with no credentials."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": {}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(config))
    return KubeClient(KubeConfig.load(tmp_path / "kubeconfig"), timeout=timeout)


async def test_a_throttled_request_is_sent_again_after_retry_after(
    server: tuple[KubeClient, list[tuple[str, float]], list[int]],
) -> None:
    kube, arrivals, script = server
    script += [429, 503]
    await kube.request("POST", "/api/v1/namespaces/n/configmaps", body={"kind": "ConfigMap"})
    assert [m for m, _ in arrivals] == ["POST"] * 3
    gaps = [b - a for (_, a), (_, b) in itertools.pairwise(arrivals)]
    assert all(g >= 0.29 for g in gaps), gaps  # each waited the 0.3 s asked for


async def test_other_failures_are_errors_at_once(
    server: tuple[KubeClient, list[tuple[str, float]], list[int]],
) -> None:
    kube, arrivals, script = server
    script += [500]
    with pytest.raises(ApiError) as failed:
        await kube.request("GET", "/api/v1/namespaces/n/configmaps/x")
    assert failed.value.status == 500
    assert len(arrivals) == 1


def test_waits_double_from_the_first_up_to_the_most_for_ever() -> None:
    waits = backoff(0.5, 3.0)
    assert [next(waits) for _ in range(6)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


async def test_no_answer_is_a_transport_error_never_aiohttps(tmp_path: Path) -> None:
    """Refused, timed out or cut mid-watch: each a TransportError (a KubeError), which every caller
    retries; none of aiohttp's or the socket layer's own exceptions gets out."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    async with loopback_client(tmp_path, port) as refused:
        with pytest.raises(TransportError) as failed:
            await refused.request("GET", "/api/v1/namespaces/n/configmaps/x")
    cause = type(failed.value.__cause__).__name__  # aiohttp's own error, kept as the cause
    assert f"GET /api/v1/namespaces/n/configmaps/x: no answer: {cause}" in str(failed.value)


async def test_a_timeout_and_a_cut_watch_are_transport_errors(
    server: tuple[KubeClient, list[tuple[str, float]], list[int]], tmp_path: Path
) -> None:
    kube, _, _ = server
    port = int(str(kube.config.server).rsplit(":", 1)[1])
    async with loopback_client(tmp_path, port, timeout=0.2) as hasty:
        with pytest.raises(TransportError) as late:
            await hasty.request("GET", "/api/v1/namespaces/n/configmaps/slow")
    assert isinstance(late.value.__cause__, TimeoutError)
    seen: list[str] = []

    async def follow() -> None:
        async for event in kube.watch("v1", "ConfigMap", "n"):
            seen.append(event.object["metadata"]["name"])

    with pytest.raises(TransportError):
        await follow()
    assert seen == ["a"]  # what came before the cut was told
    assert issubclass(TransportError, KubeError)
    assert issubclass(ApiError, KubeError)
