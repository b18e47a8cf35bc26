"""`python -m smith_controller`: run the controller against $KUBECONFIG (or in-cluster credentials).

Peers: $SMITH_PLANNER (default 127.0.0.1:7401), $SMITH_STATUS (127.0.0.1:7402); executors are found
through Executor resources in $SMITH_NAMESPACE (default smith-system)."""

from __future__ import annotations

import asyncio
import logging

from smith_telemetry import setup_tracing

from smith_controller.operator import Controller, Settings, run
from smith_kube import KubeConfig


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s smith-controller %(levelname)s %(message)s")
    setup_tracing("smith-controller")
    controller = Controller(KubeConfig.auto(), Settings.from_env())
    asyncio.run(run(controller))


if __name__ == "__main__":
    main()
