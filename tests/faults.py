"""Fault injection for Smith's services running as processes on a local plane: Toxiproxy's HTTP API, a
small TLS proxy that answers with the status codes Toxiproxy cannot produce (429, 503), and a ledger that
watches every managed object so a test can say none was lost or created twice. (Fixtures: tests/chaos.)"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

from live import bundle
from smith_controlplane.plane import ControlPlane, free_port
from smith_controlplane.services import SERVICES, Services, running_services
from smith_controlplane.trust import LocalTrust
from smith_engine.model import BUNDLE_NAME_LABEL
from smith_kube import KubeClient, KubeConfig, KubeError, TransportError
from support import config_map, eventually, resource

FULL = os.environ.get("SMITH_CHAOS") == "full"
SCALE = 5 if FULL else 1  # Bundles per scenario: 20 in `make test`, 100 with `make chaos`
TALLY: Counter[str] = Counter()  # what the suite saw converge and counted: printed at its end
Json = dict[str, Any]


@dataclass
class Toxiproxy:
    """A running toxiproxy-server and its HTTP API."""

    api: str

    async def _call(self, method: str, path: str, body: Json | None = None) -> Any:
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, self.api + path, json=body) as answer,
        ):
            if answer.status >= 400:
                raise AssertionError(f"toxiproxy {method} {path}: {answer.status} {await answer.text()}")
            return await answer.json() if answer.content_type == "application/json" else None

    async def proxy(self, name: str, upstream: str) -> str:
        """A proxy to `upstream` (host:port); its listen address."""
        listen = f"127.0.0.1:{free_port()}"
        await self._call("POST", "/proxies", {"name": name, "listen": listen, "upstream": upstream})
        return listen

    async def toxic(
        self, proxy: str, name: str, kind: str, stream: str = "downstream", **attributes: Any
    ) -> None:
        body = {"name": name, "type": kind, "stream": stream, "toxicity": 1.0, "attributes": attributes}
        await self._call("POST", f"/proxies/{proxy}/toxics", body)

    async def clear(self, proxy: str, name: str) -> None:
        await self._call("DELETE", f"/proxies/{proxy}/toxics/{name}")

    async def enabled(self, proxy: str, on: bool) -> None:
        """Cut (False: every connection dropped, new ones refused) or restore the proxy."""
        await self._call("POST", f"/proxies/{proxy}", {"enabled": on})


# --- a fault-answering proxy ----------------------------------------------------------------------


@dataclass
class Faults:
    """What the fault proxy answers instead of the API server: `phases` are (status, Retry-After or
    None, how many), served in turn to every `every`-th request that is not a watch; then nothing.
    While `hidden_group` is set, discovery's list of API groups leaves that group out, as an API server
    that has just started answers for a moment."""

    phases: list[tuple[int, str | None, int]] = field(default_factory=list)
    every: int = 3
    hidden_group: str | None = None
    seen: Counter[int] = field(default_factory=Counter)
    _count: int = 0

    def next(self, request: web.Request) -> tuple[int, str | None] | None:
        if request.query.get("watch") == "true" or not self.phases:
            return None
        self._count += 1
        if self._count % self.every:
            return None
        status, retry, left = self.phases[0]
        self.phases[0] = (status, retry, left - 1)
        if left <= 1:
            self.phases.pop(0)
        return status, retry


@contextlib.asynccontextmanager
async def fault_proxy(plane: ControlPlane, faults: Faults) -> AsyncIterator[str]:
    """A TLS proxy before the plane's API server (its serving certificate, the admin's client one
    upstream) that answers as `faults` says and passes everything else through, watches streamed.
    Yields its URL."""
    pki = plane._pki
    assert pki is not None
    serving = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    serving.load_cert_chain(pki.serving_cert, pki.serving_key)
    upstream = ssl.create_default_context(cafile=str(pki.ca_cert))
    upstream.load_cert_chain(pki.admin_cert, pki.admin_key)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=upstream, limit=0))

    async def handle(request: web.Request) -> web.StreamResponse:
        if (fault := faults.next(request)) is not None:
            status, retry = fault
            faults.seen[status] += 1
            body = {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "code": status,
                "reason": "Injected",
            }
            return web.json_response(body, status=status, headers={"Retry-After": retry} if retry else {})
        hiding = faults.hidden_group is not None and request.method == "GET" and request.path == "/apis"
        hop = ("host", "authorization", "content-length", "transfer-encoding", "connection")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in hop}
        async with session.request(
            request.method,
            plane.server + request.rel_url.path_qs,
            headers=headers,
            data=await request.read() or None,
            timeout=aiohttp.ClientTimeout(total=None),
        ) as answer:
            if hiding and answer.status == 200:
                return web.json_response(_without_group(await answer.json(), faults.hidden_group))
            out = web.StreamResponse(status=answer.status, headers={"Content-Type": answer.content_type})
            await out.prepare(request)
            async for chunk in answer.content.iter_any():
                await out.write(chunk)
            await out.write_eof()
            return out

    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=serving).start()
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
        await session.close()


def _without_group(discovery: Json, group: str | None) -> Json:
    """An API group list (or an aggregated discovery list) without `group`."""

    def name(entry: Json) -> str:
        return str(entry.get("name") or entry.get("metadata", {}).get("name"))

    for key in ("groups", "items"):
        if key in discovery:
            discovery[key] = [g for g in discovery[key] if name(g) != group]
    return discovery


# --- the system under test ------------------------------------------------------------------------


def kubeconfig_via(plane: ControlPlane, server: str, path: Path) -> Path:
    """The plane's kubeconfig, pointed at `server` (a proxy before the API server)."""
    config = plane.kubeconfig_dict()
    config["clusters"][0]["cluster"]["server"] = server
    path.write_text(yaml.safe_dump(config))
    return path


@contextlib.contextmanager
def smith(kubeconfig: Path, logs: Path, **options: Any) -> Iterator[Services]:
    """Every Smith service as a process against `kubeconfig`; afterwards, no traceback in any log. A
    test that fails inside says what the services complained of (the logs are gone after CI)."""
    try:
        with running_services(kubeconfig, logs, env={"SMITH_RESYNC_SECONDS": "0"}, **options) as started:
            yield started
    except AssertionError as e:
        raise AssertionError(f"{e}\n{complaints(logs)}") from None
    tracebacks = {log.name: _tracebacks(log.read_text(errors="replace")) for log in logs.glob("*.log")}
    assert not {name: lines for name, lines in tracebacks.items() if lines}, tracebacks


@contextlib.asynccontextmanager
async def smith_beside_proxy(kubeconfig: Path, logs: Path, **options: Any) -> AsyncIterator[Services]:
    """`smith`, stopped from a thread: for services whose API server is a proxy in the test's own event
    loop (`fault_proxy`), which must go on serving their last requests while they stop (a loop blocked
    waiting for them held each stopping service until it was killed, 10 s later)."""
    async with KubeClient(KubeConfig.load(kubeconfig)) as kube:  # made here: the proxy serves meanwhile
        trust = await LocalTrust.make(kube, logs / "trust", SERVICES)
    stack = contextlib.ExitStack()
    services = stack.enter_context(smith(kubeconfig, logs, trust=trust, **options))
    try:
        yield services
    except BaseException as e:
        if not await asyncio.to_thread(stack.__exit__, type(e), e, e.__traceback__):
            raise
    else:
        await asyncio.to_thread(stack.close)


def complaints(logs: Path, last: int = 12) -> str:
    """The last warnings and errors of each service's log, one line each."""
    told = []
    for log in sorted(logs.glob("*.log")):
        lines = [
            line[:300]
            for line in log.read_text(errors="replace").splitlines()
            if '"level": "warning"' in line or '"level": "error"' in line or "Traceback" in line
        ]
        told += [f"{log.name}: {len(lines)} warnings and errors, the last:", *lines[-last:]]
    return "\n".join(told)


def _tracebacks(log: str) -> list[str]:
    """Lines with a traceback, until the service was told to stop (kopf's watch generators sometimes
    complain as the event loop closes under them: its shutdown, not a fault's effect)."""
    lines = log.splitlines()
    end = next((i for i, line in enumerate(lines) if "Signal SIGTERM is received" in line), len(lines))
    return [line for line in lines[:end] if "Traceback" in line]


# --- what happened to the objects -----------------------------------------------------------------


@dataclass
class Ledger:
    """Every managed object of a namespace as the API server told a watch: creations per object."""

    created: Counter[str] = field(default_factory=Counter)
    uids: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))


@contextlib.asynccontextmanager
async def ledger(kube: KubeClient, namespace: str) -> AsyncIterator[Ledger]:
    book = Ledger()

    def saw(kind: str, meta: Json, *, added: bool) -> None:
        key = f"{kind}/{meta['name']}"
        if added:
            book.created[key] += 1
        book.uids[key].add(meta["uid"])

    async def follow(kind: str) -> None:
        """List (counting objects first seen there as created: made while no watch was open), then
        watch; again from a fresh list when the watch's version is gone or the connection fails."""
        while True:
            try:
                listing = await kube.list("v1", kind, namespace, label_selector=BUNDLE_NAME_LABEL)
                for item in listing["items"]:
                    saw(
                        kind, item["metadata"], added=f"{kind}/{item['metadata']['name']}" not in book.created
                    )
                version = listing["metadata"]["resourceVersion"]
                async for event in kube.watch(
                    "v1", kind, namespace, resource_version=version, label_selector=BUNDLE_NAME_LABEL
                ):
                    if event.type != "BOOKMARK":
                        saw(kind, event.object["metadata"], added=event.type == "ADDED")
            except KubeError:
                await asyncio.sleep(0.2)

    async def caught_up() -> bool:
        """The watches have told of every object there is now (a Bundle may be Ready a moment before
        the watch tells of its last object)."""
        for kind in ("ConfigMap", "Secret"):
            listing = await kube.list("v1", kind, namespace, label_selector=BUNDLE_NAME_LABEL)
            for item in listing["items"]:
                if item["metadata"]["uid"] not in book.uids.get(f"{kind}/{item['metadata']['name']}", ()):
                    return False
        return True

    tasks = [asyncio.create_task(follow(kind)) for kind in ("ConfigMap", "Secret")]
    try:
        yield book
        await eventually(caught_up, within=60, what="the ledger's watches to catch up")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def chain(name: str, namespace: str, length: int = 3) -> Json:
    """A Bundle of ConfigMaps, each depending on the one before."""
    steps = [
        resource(
            f"{name}-{i}", config_map(f"{name}-{i}", {"v": "1"}), depends_on=[f"{name}-{i - 1}"] if i else []
        )
        for i in range(length)
    ]
    return bundle(name, namespace, *steps)


async def converged(kube: KubeClient, namespace: str, names: list[str], *, within: float = 120) -> None:
    """Every named Bundle Ready at its generation."""

    async def ready() -> bool:
        try:
            listing = (await kube.list("smith.atlassian.com/v1", "Bundle", namespace))["items"]
        except TransportError:  # the API server restarting
            return False
        done = {
            b["metadata"]["name"]
            for b in listing
            if (b.get("status") or {}).get("observedGeneration") == b["metadata"]["generation"]
            and any(c["type"] == "Ready" and c["status"] == "True" for c in b["status"].get("conditions", []))
        }
        return done >= set(names)

    try:
        await eventually(ready, within=within, what=f"{len(names)} Bundles Ready")
        TALLY["Bundles converged"] += len(names)
    except AssertionError as e:
        listing = (await kube.list("smith.atlassian.com/v1", "Bundle", namespace))["items"]
        stuck = [(b["metadata"]["name"], b.get("status")) for b in listing if b["metadata"]["name"] in names]
        raise AssertionError(f"{e}; for example {stuck[:2]}") from None


def nothing_lost_or_doubled(book: Ledger, names: list[str], length: int = 3) -> None:
    expected = {f"ConfigMap/{n}-{i}" for n in names for i in range(length)}
    assert set(book.created) >= expected, f"never created: {sorted(expected - set(book.created))[:5]}"
    doubled = {k: n for k, n in book.created.items() if n > 1}
    assert not doubled, f"created more than once: {doubled}"
    assert all(len(book.uids[k]) == 1 for k in expected)
    TALLY["objects each created exactly once (none lost, none duplicated)"] += len(expected)
