"""Smith's services as local processes against a kubeconfig, on free loopback ports: what `make run`
and the benchmarks start. Every process dies with the one that started it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from smith_controlplane.plane import dying_with_parent, free_ports

SERVICES = (
    "smith_planner",
    "smith_status",
    "smith_executor_core",
    "smith_executor_servicecatalog",
    "smith_executor_dynamic",
    "smith_plugin_app",
    "smith_controller",
)


@contextlib.contextmanager
def running_services(
    kubeconfig: Path,
    logs: Path,
    *,
    extra: Mapping[str, Sequence[str]] | None = None,
    env: Mapping[str, str] | None = None,
    metrics: dict[str, int] | None = None,
    kubeconfigs: Mapping[str, Path] | None = None,
) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """Start every service (and the `extra` commands, by name); stop them all on exit. Logs go to
    `logs/<name>.log`; `env` adds variables (e.g. OTEL_*) to every process. Each service's metrics and
    probes are on a free port too: `metrics` (given or not) maps each service to it. `kubeconfigs`
    gives a service credentials of its own (e.g. its ServiceAccount's token) instead of `kubeconfig`."""
    metrics = {} if metrics is None else metrics
    ports = iter(free_ports(2 * len(SERVICES)))  # chosen together: never the same port twice
    listen = {module: next(ports) for module in SERVICES if module != "smith_controller"}
    base = {
        **os.environ,
        **(env or {}),
        "KUBECONFIG": str(kubeconfig),
        "SMITH_PLANNER": f"127.0.0.1:{listen['smith_planner']}",
        "SMITH_STATUS": f"127.0.0.1:{listen['smith_status']}",
    }
    commands: dict[str, Sequence[str]] = {module: [sys.executable, "-m", module] for module in SERVICES}
    commands.update(extra or {})
    logs.mkdir(parents=True, exist_ok=True)
    started: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, command in commands.items():
            own = {**base, "SMITH_LISTEN": f"127.0.0.1:{listen[name]}"} if name in listen else dict(base)
            if kubeconfigs and name in kubeconfigs:
                own["KUBECONFIG"] = str(kubeconfigs[name])
            if name in SERVICES:
                own["SMITH_METRICS"] = f"127.0.0.1:{metrics.setdefault(name, next(ports))}"
            with (logs / f"{name}.log").open("wb") as out:
                started[name] = subprocess.Popen(
                    dying_with_parent(command), env=own, stdout=out, stderr=subprocess.STDOUT
                )
        yield started
    finally:
        for process in reversed(started.values()):
            process.send_signal(signal.SIGTERM)
        for process in started.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
