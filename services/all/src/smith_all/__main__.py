"""`python -m smith_all` (`smith-all`): all of Smith in one process, for small installs and development:
the controller, the planner, the status service, the three executors and the sample `app` plugin on one
event loop. They call each other in-process (smith_wire.local: no port, no TLS, no serialisation) and
share one API client (one connection pool, one rate limit: SMITH_API_QPS); each executor and the plugin
still registers (endpoint `local:<name>`), so the controller routes as it does between processes.
Settings as the controller's (SMITH_NAMESPACE, SMITH_WATCH_NAMESPACE, SMITH_RESYNC_SECONDS, ...);
metrics and probes on $SMITH_METRICS (default 127.0.0.1:8400). Replicas work as the controller's do:
each uses its own servicers."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
from collections.abc import AsyncIterator

from smith_controller.manager import Controller, run
from smith_controller.settings import Settings
from smith_executor.plugin import PluginServicer, register_plugin
from smith_executor.run import Background, register_executor
from smith_executor.servicer import ExecutorServicer, Family, RegistryFamily
from smith_executor_dynamic.catalog import CrdCatalog
from smith_planner.servicer import PlannerServicer
from smith_plugin_app import PLUGIN
from smith_status.servicer import StatusServicer
from smith_telemetry import setup_tracing
from smith_telemetry.logs import setup_logging
from smith_telemetry.metrics import metrics_address, serve_http
from smith_wire import local
from smith_wire.rpc import run_loop

from smith_engine.readiness import BUILTIN, SERVICE_CATALOG
from smith_kube import KubeClient, KubeConfig

log = logging.getLogger("smith.all")
PLANNER, STATUS = f"{local.PREFIX}planner", f"{local.PREFIX}status"


@contextlib.asynccontextmanager
async def executors(kube: KubeClient) -> AsyncIterator[None]:
    """The executors and the plugin, served in-process and registered (heartbeats kept) while the
    process runs. The registrations stay when it stops: every replica serves the same `local:`
    endpoints itself, so one stopping must not take them from the others."""
    served: list[tuple[str, Family, bool, Background | None]] = [
        ("core", RegistryFamily(BUILTIN), False, None),
        ("servicecatalog", RegistryFamily(SERVICE_CATALOG), False, None),
        ("dynamic", (catalog := CrdCatalog()), True, catalog.follow),
    ]
    tasks: list[asyncio.Task[None]] = []
    for name, family, fallback, background in served:
        endpoint = f"{local.PREFIX}{name}"
        local.serve(endpoint, ExecutorServicer(kube, family))
        tasks += await register_executor(kube, name, endpoint, family, fallback, background)
    endpoint = f"{local.PREFIX}plugin-{PLUGIN.name}"
    local.serve(endpoint, PluginServicer(PLUGIN))
    tasks.append(await register_plugin(kube, PLUGIN, endpoint))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def serve(config: KubeConfig, settings: Settings) -> None:
    kube = KubeClient(config, rate=settings.rate())  # every service's one client (and one rate limit)
    status = StatusServicer(kube)
    local.serve(PLANNER, PlannerServicer())
    local.serve(STATUS, status)
    # in-process calls need no trust; a call to a server elsewhere (an executor or plugin of your own,
    # registered with a host:port) goes with TLS and a token as the controller's always do
    here = dataclasses.replace(settings, planner=PLANNER, status=STATUS)
    controller = Controller(config, here, shared=kube)
    stop, ready = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    http = None
    if (address := metrics_address("127.0.0.1:8400")) is not None:
        http, port = await serve_http(address, ready=lambda: ready.is_set() and controller.synced())
        log.info("smith-all serving metrics and probes on port %d", port)
    try:
        async with executors(kube):
            await run(controller, stop=stop, ready=ready)
    finally:
        await status.events.drain()
        if http is not None:
            await http.cleanup()
        await kube.close()


def main() -> None:
    setup_logging("smith-all")
    setup_tracing("smith-all")
    run_loop(serve(KubeConfig.auto(), Settings.from_env()))


if __name__ == "__main__":
    main()
