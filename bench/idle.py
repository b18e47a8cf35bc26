"""What Smith costs with nothing to do, and how it notices a change it was not told of."""

from __future__ import annotations

import asyncio
import time

from bench.harness import Harness, ours
from bench.shapes import API
from smith_controlplane.services import cpu_seconds


class Idle(Harness):
    """What Smith costs with nothing to do, and how it notices a change it was not told of."""

    async def change_detection(self, seconds: float) -> None:
        """What deciding "nothing to apply" costs for converged Bundles. Cold: fresh executors know
        nothing, so the first reconcile of every Bundle checks each object with one server-side dry
        run. Warm: resyncs (every SMITH_RESYNC_SECONDS) find every converged Bundle unchanged since its
        last pass and pass none of them (no call to any service): the CPU of all services per Bundle per
        resync. Writes must be 0 in both; the baseline is the same reconciles' count and time."""

        async def snapshot() -> tuple[float, float, float, float, float, float]:
            count, spent = await self.reconciles()
            cpu = sum(cpu_seconds(self.pids).values())
            skipped = await self.controller_metric("smith_passes_skipped_total")
            writes, dry_runs = ours(await self.writes()), ours(await self.writes(dry_run=True))
            return writes, dry_runs, count, spent, cpu, skipped

        start, began = await snapshot(), time.perf_counter()
        await self.settled()
        cold_seconds = time.perf_counter() - began
        bundles = len((await self.kube.list(API, "Bundle"))["items"])
        settled = await snapshot()
        await asyncio.sleep(seconds)
        end = await snapshot()

        def phase(a: tuple[float, ...], b: tuple[float, ...]) -> dict[str, float]:
            writes, dry_runs, count, spent, cpu, skipped = (y - x for x, y in zip(a, b, strict=True))
            return {
                "skipped": skipped,
                "writes": writes,
                "dry_runs": dry_runs,
                "reconciles": count,
                "reconcile_ms": 1000 * spent / max(count, 1),
                "cpu_ms_per_reconcile": 1000 * cpu / max(count, 1),
            }

        self.results["change_detection"] = {
            "bundles": bundles,
            "cold_seconds": cold_seconds,
            "warm_seconds": seconds,
            "cold": phase(start, settled),
            "warm": phase(settled, end),
        }

    async def idle(self, seconds: float) -> None:
        """API writes and CPU while nothing changes; the control plane's own CPU is the baseline."""
        backlog, drained = await self.events_drained()
        await asyncio.sleep(5)  # let the last status writes land
        everything = {**self.pids, **self.plane_pids}
        writes, cpu = await self.writes(), cpu_seconds(everything)
        await asyncio.sleep(seconds)
        writes_after, cpu_after = await self.writes(), cpu_seconds(everything)
        used = {n: cpu_after[n] - cpu[n] for n in cpu}
        self.results["idle"] = {
            "seconds": seconds,
            "events_backlog": backlog,
            "events_drain_seconds": drained,
            "api_writes": {r: n - writes.get(r, 0) for r, n in writes_after.items() if n > writes.get(r, 0)},
            "cpu_seconds": {n: used[n] for n in self.pids},
            "plane_cpu_seconds": {n: used[n] for n in self.plane_pids},
        }
