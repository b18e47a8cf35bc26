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
from smith_controlplane.trust import LocalTrust, make_local_trust

SERVICES = (
    "smith_planner",
    "smith_status",
    "smith_executor_core",
    "smith_executor_servicecatalog",
    "smith_executor_dynamic",
    "smith_plugin_app",
    "smith_controller",
)


class Services(dict[str, "subprocess.Popen[bytes]"]):
    """The running processes by name; each can be killed (as a crash would) and started again as it was."""

    def __init__(self, logs: Path) -> None:
        super().__init__()
        self.logs = logs
        self.launch: dict[str, tuple[list[str], dict[str, str]]] = {}

    def start(self, name: str, command: list[str], env: dict[str, str]) -> None:
        self.launch[name] = (command, env)
        with (self.logs / f"{name}.log").open("ab") as out:
            self[name] = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)

    def kill(self, name: str) -> None:
        """SIGKILL: no goodbye (an executor's registration stays, a controller's lease runs out)."""
        self[name].kill()
        self[name].wait()

    def restart(self, name: str) -> None:
        self.start(name, *self.launch[name])


@contextlib.contextmanager
def _all_in_one(
    kubeconfig: Path,
    logs: Path,
    extra: Mapping[str, Sequence[str]] | None,
    env: Mapping[str, str] | None,
    metrics: dict[str, int] | None,
    kubeconfigs: Mapping[str, Path] | None,
) -> Iterator[Services]:
    metrics = {} if metrics is None else metrics
    (port,) = free_ports(1)
    metrics["smith_all"] = port
    base = {**os.environ, **(env or {}), "KUBECONFIG": str(kubeconfig)}
    own = {
        **base,
        "KUBECONFIG": str((kubeconfigs or {}).get("smith_all", kubeconfig)),
        "SMITH_METRICS": f"127.0.0.1:{port}",
        "SMITH_CONTROLLER_ID": controller_identity("smith_all"),
    }
    logs.mkdir(parents=True, exist_ok=True)
    started = Services(logs)
    try:
        commands = {"smith_all": [sys.executable, "-m", "smith_all"], **(extra or {})}
        for name, command in commands.items():
            (logs / f"{name}.log").unlink(missing_ok=True)
            started.start(name, dying_with_parent(list(command)), own if name == "smith_all" else base)
        yield started
    finally:
        _stop(started)


def _stop(started: Services) -> None:
    for process in reversed(started.values()):
        process.send_signal(signal.SIGTERM)
    for process in started.values():
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cpu_seconds(pids: Mapping[str, int]) -> dict[str, float]:
    """User + system CPU seconds of each process so far (/proc/<pid>/stat fields 14 and 15)."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = {}
    for name, pid in pids.items():
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        out[name] = (int(fields[11]) + int(fields[12])) / ticks
    return out


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
    service_env: Mapping[str, Mapping[str, str]] | None = None,
    insecure: bool = False,
    trust: LocalTrust | None = None,
    all_in_one: bool = False,
) -> Iterator[Services]:
    """Start every service (and the `extra` commands, by name); stop them all on exit. Logs go to
    `logs/<name>.log`; `env` adds variables (e.g. OTEL_*) to every process. Each service's metrics and
    probes are on a free port too: `metrics` (given or not) maps each service to it. `kubeconfigs`
    gives a service credentials of its own (e.g. its ServiceAccount's token) instead of `kubeconfig`.
    `controllers` > 1 runs that many controller replicas sharing the Bundles (`smith_controller`,
    `smith_controller_2`, ...; each its own member identity and metrics port). `service_env` adds
    variables to one service (e.g. its SMITH_LISTEN and SMITH_ADVERTISE, to put a proxy before it).
    The services trust each other as in a cluster (smith_controlplane.trust: TLS, the controller's
    token), with files under `logs/trust` (or `trust`, made beforehand: by a caller whose API server is
    a proxy in its own event loop, which this function would block); `insecure` runs them in the
    development mode without (the benchmarks measure what security costs). `all_in_one` runs them all
    in one process instead (`smith_all`: no port between them, so no trust to set up), with the
    credentials `kubeconfigs` gives `smith_all`, if any."""
    if all_in_one:
        with _all_in_one(kubeconfig, logs, extra, env, metrics, kubeconfigs) as started:
            yield started
        return
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
    if trust is None and not insecure:
        trust = make_local_trust(kubeconfig, logs / "trust", SERVICES)
    if trust is None:
        base["SMITH_INSECURE_DEVELOPMENT"] = "1"
    started = Services(logs)
    try:
        for name, command in commands.items():
            own = {**base, "SMITH_LISTEN": f"127.0.0.1:{listen[name]}"} if name in listen else dict(base)
            if kubeconfigs and name in kubeconfigs:
                own["KUBECONFIG"] = str(kubeconfigs[name])
            if name in SERVICES or name in replicas:
                own["SMITH_METRICS"] = f"127.0.0.1:{metrics.setdefault(name, next(ports))}"
            if name == "smith_controller" or name in replicas:
                own["SMITH_CONTROLLER_ID"] = controller_identity(name)
            if trust is not None:
                own.update(trust.env(name if name in listen else "smith_controller"))
            own.update((service_env or {}).get(name, {}))
            (logs / f"{name}.log").unlink(missing_ok=True)
            started.start(name, dying_with_parent(command), own)
        yield started
    finally:
        _stop(started)
