"""`python -m smith_controller`: run the controller against $KUBECONFIG (or in-cluster credentials).

Peers: $SMITH_PLANNER (default 127.0.0.1:7401), $SMITH_STATUS (127.0.0.1:7402); executors are found
through Executor resources in $SMITH_NAMESPACE (default smith-system). Every call is TLS, trusting
$SMITH_TLS_CA (default $SMITH_TLS_DIR/ca.crt), with the tokens in $SMITH_TOKEN_DIR (smith_wire.trust).
Metrics and the liveness and readiness probes (/metrics, /healthz, /readyz) on $SMITH_METRICS
(default 127.0.0.1:8400)."""

from __future__ import annotations

import asyncio
import logging

from smith_telemetry import setup_tracing
from smith_telemetry.logs import setup_logging
from smith_telemetry.metrics import metrics_address, serve_http
from smith_wire.rpc import run_loop
from smith_wire.trust import Insecure, warn_insecure

from smith_controller.manager import Controller, run
from smith_controller.settings import Settings
from smith_kube import KubeConfig

log = logging.getLogger("smith.controller")


async def serve(controller: Controller) -> None:
    ready = asyncio.Event()
    http = None
    if (address := metrics_address("127.0.0.1:8400")) is not None:
        http, port = await serve_http(address, ready=lambda: ready.is_set() and controller.synced())
        log.info("smith-controller serving metrics and probes on port %d", port)
    try:
        await run(controller, ready=ready)
    finally:
        if http is not None:
            await http.cleanup()


def main() -> None:
    setup_logging("smith-controller")
    setup_tracing("smith-controller")
    settings = Settings.from_env()
    if isinstance(settings.trust, Insecure):
        warn_insecure("smith-controller")
    run_loop(serve(Controller(KubeConfig.auto(), settings)))


if __name__ == "__main__":
    main()
