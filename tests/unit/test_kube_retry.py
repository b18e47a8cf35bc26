"""The API client sends again what a server turned away unprocessed — 429 Too Many Requests, or a 5xx
that says `Retry-After` — after the time asked for, and gives an error for any other failure at once
(a real HTTP server on loopback stands in for a throttling API server or proxy)."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import yaml
from aiohttp import web

from smith_kube import ApiError, KubeClient, KubeConfig
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

    async def handle(request: web.Request) -> web.Response:
        arrivals.append((request.method, time.monotonic()))
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
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": {}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(config))
    async with KubeClient(KubeConfig.load(tmp_path / "kubeconfig")) as kube:
        yield kube, arrivals, script
    await runner.cleanup()


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
