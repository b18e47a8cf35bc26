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


def controller_identity(name: str) -> str:
    """The member identity `running_services` gives the controller replica it runs as `name`."""
    return f"{name.replace('_', '-')}-{os.getpid()}"


@contextlib.contextmanager
def running_services(
    kubeconfig: Path,
    logs: Path,
    *,
    extra: Mapping[str, Sequence[str]] | None = None,
    env: Mapping[str, str] | None = None,
    metrics: dict[str, int] | None = None,
    kubeconfigs: Mapping[str, Path] | None = None,
    controllers: int = 1,
) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """Start every service (and the `extra` commands, by name); stop them all on exit. Logs go to
    `logs/<name>.log`; `env` adds variables (e.g. OTEL_*) to every process. Each service's metrics and
    probes are on a free port too: `metrics` (given or not) maps each service to it. `kubeconfigs`
    gives a service credentials of its own (e.g. its ServiceAccount's token) instead of `kubeconfig`.
    `controllers` > 1 runs that many controller replicas sharing the Bundles (`smith_controller`,
    `smith_controller_2`, ...; each its own member identity and metrics port)."""
    metrics = {} if metrics is None else metrics
    replicas = [f"smith_controller_{i}" for i in range(2, controllers + 1)]
    ports = iter(free_ports(2 * len(SERVICES) + len(replicas)))  # chosen together: never one port twice
    listen = {module: next(ports) for module in SERVICES if module != "smith_controller"}
    base = {
        **os.environ,
        **(env or {}),
        "KUBECONFIG": str(kubeconfig),
        "SMITH_PLANNER": f"127.0.0.1:{listen['smith_planner']}",
        "SMITH_STATUS": f"127.0.0.1:{listen['smith_status']}",
    }
    commands: dict[str, Sequence[str]] = {module: [sys.executable, "-m", module] for module in SERVICES}
    commands.update({name: [sys.executable, "-m", "smith_controller"] for name in replicas})
    commands.update(extra or {})
    logs.mkdir(parents=True, exist_ok=True)
    started: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, command in commands.items():
            own = {**base, "SMITH_LISTEN": f"127.0.0.1:{listen[name]}"} if name in listen else dict(base)
            if kubeconfigs and name in kubeconfigs:
                own["KUBECONFIG"] = str(kubeconfigs[name])
            if name in SERVICES or name in replicas:
                own["SMITH_METRICS"] = f"127.0.0.1:{metrics.setdefault(name, next(ports))}"
            if name == "smith_controller" or name in replicas:
                own["SMITH_CONTROLLER_ID"] = controller_identity(name)
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
