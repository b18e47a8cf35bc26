"""The whole of Smith, running in the test session's event loop against the local control plane:
planner, status and executor-core gRPC servers on free ports and the kopf controller, wired the way
their `__main__`s wire them. Tests can stop and restart the controller and the executor."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
import pytest_asyncio
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from smith_controller.manager import Controller, run
from smith_controller.settings import Settings
from smith_executor import registration
from smith_executor.memo import Memo
from smith_executor.plugin import PluginServicer, registration_object
from smith_executor.servicer import ExecutorServicer, Family, RegistryFamily
from smith_executor_dynamic.catalog import CrdCatalog
from smith_planner.servicer import register as register_planner
from smith_plugin_app import PLUGIN
from smith_status.servicer import StatusServicer
from smith_telemetry import setup_tracing
from smith_wire.rpc import Register, reviewer, start_server
from smith_wire.trust import ServerTrust, audience

from fakes import Broker
from live import RESYNC_SECONDS
from smith_controlplane.services import SERVICES
from smith_controlplane.trust import LocalTrust
from smith_engine.readiness import BUILTIN, SERVICE_CATALOG
from smith_kube import KubeClient, KubeConfig
from smith_kube.manifests import create_all
from support import ROOT

T = TypeVar("T")

EXECUTORS_NAMESPACE = "smith-system"
SERVERS = [s for s in SERVICES if s != "smith_controller"]


async def install_crds(kube: KubeClient) -> None:
    files = [*(ROOT / "deploy" / "crds").glob("*.yaml"), *(ROOT / "deploy" / "servicecatalog").glob("*.yaml")]
    await create_all(kube, files, namespaces=[EXECUTORS_NAMESPACE])


@dataclass
class System:
    kube_config: KubeConfig
    kube: KubeClient
    spans: InMemorySpanExporter
    trust: LocalTrust
    reviewed: set[str] = field(default_factory=set)  # digests of the tokens the servers had reviewed
    servers: list[grpc.aio.Server] = field(default_factory=list)
    planner_port: int = 0
    status_port: int = 0
    executor: grpc.aio.Server | None = None
    executor_endpoint: str = ""
    plugin: grpc.aio.Server | None = None
    background: list[asyncio.Task[None]] = field(default_factory=list)
    executors: list[ExecutorServicer] = field(default_factory=list)
    controller_thread: threading.Thread | None = None
    controller_stop: threading.Event | None = None
    controller: Controller | None = None
    controller_loop: asyncio.AbstractEventLoop | None = None

    def server_trust(self, service: str) -> ServerTrust:
        """A server's trust as its process has it: its certificate, the controller its only caller, and
        tokens reviewed by the API server (here with the test's credentials)."""

        review = reviewer(self.kube, audience(self.trust.target(service)))

        async def recording(token: str) -> str | None:
            self.reviewed.add(hashlib.sha256(token.encode()).hexdigest())
            return await review(token)

        return self.trust.server(service, recording)

    async def serve(
        self, service: str, registrations: list[Register], *, address: str = "127.0.0.1:0"
    ) -> tuple[grpc.aio.Server, int]:
        return await start_server(
            registrations, trust=self.server_trust(service), service=service, address=address
        )

    async def start_executor(self) -> None:
        family = RegistryFamily(BUILTIN)
        self.executor, port = await self.serve("smith_executor_core", [self._executor(family).registration()])
        self.executor_endpoint = f"127.0.0.1:{port}"
        await registration.publish(
            self.kube, name="core", endpoint=self.executor_endpoint, kinds=family.kinds()
        )

    async def start_plugin(self) -> None:
        """The sample `app` plugin (services/plugin-app), registered as its __main__ registers it."""
        self.plugin, port = await self.serve("smith_plugin_app", [PluginServicer(PLUGIN).registration()])
        await registration.publish_object(
            self.kube, registration_object(PLUGIN, endpoint=f"127.0.0.1:{port}")
        )

    async def kill_plugin(self) -> None:
        """Stop the plugin's server without withdrawing its registration, as a crash would."""
        assert self.plugin is not None
        await self.plugin.stop(grace=None)
        self.plugin = None

    async def start_servicecatalog(self) -> None:
        """The Service Catalog executor, and the fake broker that provisions what it applies."""
        family = RegistryFamily(SERVICE_CATALOG)
        server, port = await self.serve(
            "smith_executor_servicecatalog", [self._executor(family).registration()]
        )
        self.servers.append(server)
        await registration.publish(
            self.kube, name="servicecatalog", endpoint=f"127.0.0.1:{port}", kinds=family.kinds()
        )
        self.background.append(asyncio.create_task(Broker(self.kube).run()))

    async def start_dynamic_executor(self) -> None:
        catalog = CrdCatalog()
        server, port = await self.serve("smith_executor_dynamic", [self._executor(catalog).registration()])
        self.servers.append(server)

        async def republish() -> None:
            await registration.publish(
                self.kube, name="dynamic", endpoint=f"127.0.0.1:{port}", kinds=catalog.kinds(), fallback=True
            )

        await republish()
        self.background.append(asyncio.create_task(catalog.follow(self.kube, republish)))

    def _executor(self, family: Family) -> ExecutorServicer:
        servicer = ExecutorServicer(self.kube, family)
        self.executors.append(servicer)
        return servicer

    async def restart_status(self) -> None:
        """Stop the status service's server and start it again on its port: callers connect anew."""
        await self.servers[1].stop(grace=None)
        self.servers[1], _ = await self.serve(
            "smith_status",
            [StatusServicer(self.kube).registration()],
            address=f"127.0.0.1:{self.status_port}",
        )

    def forget_applied(self) -> None:
        """Empty every executor's memory of what it applied, as a restart would."""
        for servicer in self.executors:
            servicer.memo = Memo()

    async def kill_executor(self) -> None:
        """Stop the executor's server without withdrawing its registration, as a crash would."""
        assert self.executor is not None
        await self.executor.stop(grace=None)
        self.executor = None

    async def start_controller(
        self,
        *,
        watch_namespace: str = "",
        resync_seconds: float = RESYNC_SECONDS,
        status_window: float = Settings.status_window,
        lease_seconds: float = Settings.lease_seconds,
    ) -> None:
        """Run the controller's kopf operator in a thread with its own event loop, as its own process
        would: kopf's shutdown cancels the tasks of the loop it runs in. `watch_namespace` limits it
        to one namespace, as the single-namespace install does."""
        settings = Settings(
            planner=f"127.0.0.1:{self.planner_port}",
            status=f"127.0.0.1:{self.status_port}",
            namespace=EXECUTORS_NAMESPACE,
            watch_namespace=watch_namespace,
            resync_seconds=resync_seconds,
            status_window=status_window,
            lease_seconds=lease_seconds,
            trust=self.trust.client(),
        )
        controller = self.controller = Controller(self.kube_config, settings)
        self.controller_stop, ready = threading.Event(), threading.Event()
        stop = self.controller_stop

        async def serve() -> None:
            self.controller_loop = asyncio.get_running_loop()
            await run(controller, stop=stop, ready=ready)

        self.controller_thread = threading.Thread(
            target=lambda: asyncio.run(serve()),
            name="controller",
            daemon=True,
        )
        self.controller_thread.start()
        assert await asyncio.to_thread(ready.wait, 30), "the controller did not start"

    async def in_controller(self, work: Callable[[Controller], Coroutine[Any, Any, T]]) -> T:
        """Run `work` on the controller in its own event loop (its thread), as its own code would."""
        assert self.controller is not None
        assert self.controller_loop is not None
        done = asyncio.run_coroutine_threadsafe(work(self.controller), self.controller_loop)
        return await asyncio.wrap_future(done)

    async def kill_controller(self) -> None:
        assert self.controller_thread is not None
        assert self.controller_stop is not None
        self.controller_stop.set()
        await asyncio.to_thread(self.controller_thread.join, 30)
        assert not self.controller_thread.is_alive(), "the controller did not stop"
        self.controller_thread = None


@pytest_asyncio.fixture
async def smith_without_controller(smith: System) -> AsyncIterator[System]:
    """The services with no controller running: a test speaks to them as the controller would."""
    await smith.kill_controller()
    try:
        yield smith
    finally:
        await smith.start_controller()


@pytest_asyncio.fixture
async def smith_without_resync(smith: System) -> AsyncIterator[System]:
    """The system with a controller that never resyncs: what heals, heals by an event."""
    await smith.kill_controller()
    await smith.start_controller(resync_seconds=0)
    try:
        yield smith
    finally:
        await smith.kill_controller()
        await smith.start_controller()


@pytest_asyncio.fixture(scope="session")
async def smith(
    kubeconfig: Path, kube: KubeClient, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[System]:
    spans = InMemorySpanExporter()
    setup_tracing("smith-tests", processors=[SimpleSpanProcessor(spans)])
    await install_crds(kube)
    config = KubeConfig.load(kubeconfig)
    client = KubeClient(config)
    trust = await LocalTrust.make(client, tmp_path_factory.mktemp("trust"), SERVERS)
    system = System(kube_config=config, kube=client, spans=spans, trust=trust)
    planner, system.planner_port = await system.serve("smith_planner", [register_planner])
    status, system.status_port = await system.serve("smith_status", [StatusServicer(client).registration()])
    system.servers += [planner, status]
    await system.start_executor()
    await system.start_dynamic_executor()
    await system.start_servicecatalog()
    await system.start_plugin()
    await system.start_controller()
    try:
        yield system
    finally:
        if system.controller_thread is not None:
            await system.kill_controller()
        for task in system.background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        running = [system.executor, system.plugin]
        for server in [*system.servers, *(s for s in running if s is not None)]:
            with contextlib.suppress(asyncio.CancelledError):
                await server.stop(grace=None)
        await client.close()
