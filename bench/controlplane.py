"""What the local control plane costs: start-up time to ready and resident memory, minimal and full.

These are figures of the development environment, not of Smith; they tell how much of a test run
or `make run` is the plane itself. The minimal plane's start is the baseline the full one is set against.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from smith_controlplane.plane import ControlPlane


def rss_mib(pid: int, *, peak: bool = False) -> float:
    """The process's resident memory now (or its peak so far: the kernel's high-water mark)."""
    field = "VmHWM:" if peak else "VmRSS:"
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return 0.0


def start_seconds(*, full: bool, repeats: int) -> tuple[list[float], dict[str, float]]:
    times: list[float] = []
    memory: dict[str, float] = {}
    for i in range(repeats):
        began = time.perf_counter()
        with ControlPlane(full=full, nodes=2) as plane:
            times.append(time.perf_counter() - began)
            if i == repeats - 1:
                time.sleep(10)  # let caches fill and start-up garbage go before reading memory
                memory = {p.name: rss_mib(p.popen.pid) for p in plane.processes}
    return times, memory


def run(*, repeats: int = 3) -> dict[str, Any]:
    minimal, minimal_mem = start_seconds(full=False, repeats=repeats)
    full, full_mem = start_seconds(full=True, repeats=repeats)
    return {
        "start_minimal_s": statistics.median(minimal),
        "start_full_s": statistics.median(full),
        "start_full_vs_minimal": statistics.median(full) / statistics.median(minimal),
        "rss_minimal_mib": minimal_mem,
        "rss_full_mib": full_mem,
    }


def report(figures: dict[str, Any]) -> str:
    lines = [
        "Local control plane",
        f"  start to ready, minimal (etcd + kube-apiserver): {figures['start_minimal_s']:.2f} s (baseline)",
        f"  start to ready, full (+ controller-manager, scheduler, kwok, 2 Ready nodes): "
        f"{figures['start_full_s']:.2f} s "
        f"({figures['start_full_vs_minimal']:.2f}x the minimal plane)",
    ]
    for label, key in (("minimal", "rss_minimal_mib"), ("full", "rss_full_mib")):
        memory = figures[key]
        parts = ", ".join(f"{name} {mib:.0f}" for name, mib in memory.items())
        lines.append(f"  resident memory, {label}: {sum(memory.values()):.0f} MiB ({parts})")
    return "\n".join(lines)
