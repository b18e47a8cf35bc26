"""Throughput and scale: many Bundles at once, over namespaces and replicas; a takeover."""

from __future__ import annotations

import asyncio
import os
import signal
import time

from bench.controlplane import rss_mib
from bench.harness import Harness
from bench.shapes import API, CONCURRENCY, Json, bundle, layered, reference_chain
from smith_controlplane.services import controller_identity, cpu_seconds
from smith_engine.sharding import owner
from smith_kube.client import MERGE_PATCH


class Throughput(Harness):
    """Throughput and scale: many Bundles at once, over namespaces and replicas; a takeover."""

    async def throughput(self, counts: list[int]) -> str:
        rows = {}
        namespace = ""
        for count in counts:
            # each Bundle: 10 objects of its own, 5 and then 5 depending on them
            shapes = [layered(2, 5, prefix=f"b{i}-r") for i in range(count)]
            namespace = await self.namespace()
            began = time.perf_counter()
            await asyncio.gather(
                *(self.kube.create(bundle(f"b{i}", namespace, waves)) for i, waves in enumerate(shapes))
            )
            await self.until_ready(namespace, {f"b{i}" for i in range(count)})
            seconds = time.perf_counter() - began
            floor = await self.floor_once([[n for waves in shapes for n in waves[w]] for w in range(2)])
            status = (await self.kube.get(API, "Bundle", "b0", namespace))["status"]
            bound = await self.bound(shapes, status)
            rows[count] = {
                "seconds": seconds,
                "objects_per_s": count * 10 / seconds,
                "floor_seconds": floor,
                "floor_objects_per_s": count * 10 / floor,
                "ratio": seconds / floor,
                "bound_seconds": bound,
                "bound_objects_per_s": count * 10 / bound,
                "bound_ratio": bound / seconds,
            }
        base = counts[0]
        for count in counts:
            rows[count]["time_vs_smallest"] = rows[count]["seconds"] / rows[base]["seconds"]
            rows[count]["count_vs_smallest"] = count / base
        self.results["throughput"] = rows
        return namespace  # the largest set stays for the idle, reaction and footprint figures

    async def bound(self, shapes: list[list[list[str]]], status: Json) -> float:
        """Every write of these Bundles by a plain client, CONCURRENCY Bundles at a time as Smith's
        controller works (each Bundle's writes in their order): no controller converges them sooner on
        this plane. Seconds."""
        namespace, gate = await self.namespace(), asyncio.Semaphore(CONCURRENCY)

        async def one(i: int, waves: list[list[str]]) -> None:
            async with gate:
                await self.bundle_writes(namespace, f"b{i}", waves, status)

        began = time.perf_counter()
        await asyncio.gather(*(one(i, waves) for i, waves in enumerate(shapes)))
        return time.perf_counter() - began

    async def spread(self, count: int) -> Json:
        """`count` Bundles of 10 objects at once -> all Ready, with the CPU each controller replica spent."""
        namespace, shapes = await self.namespace(), [layered(2, 5, prefix=f"s{i}-r") for i in range(count)]
        everything = {**self.pids, **self.plane_pids}
        cpu = cpu_seconds(everything)
        began = time.perf_counter()
        await asyncio.gather(*(self.kube.create(bundle(f"s{i}", namespace, w)) for i, w in enumerate(shapes)))
        await self.until_ready(namespace, {f"s{i}" for i in range(count)})
        took = time.perf_counter() - began
        spent = {n: t - cpu[n] for n, t in cpu_seconds(everything).items()}
        return {
            "seconds": took,
            "objects_per_s": count * 10 / took,
            "controller_cpu_s": {n: spent[n] for n in self.controllers},
            "controller_rss_mib": {n: rss_mib(self.pids[n]) for n in self.controllers},
            "smith_cpu_s": sum(spent[n] for n in self.pids),
            "smith_cpu_by_service": {n: spent[n] for n in self.pids},
            "plane_cpu_s": {n: spent[n] for n in self.plane_pids},
        }

    async def takeover(self, count: int) -> Json:
        """Kill one controller replica (SIGKILL: its lease stays until it runs out) and at once change
        `count` converged Bundles: seconds until the dead replica's share and the others' are Ready."""
        namespace = await self.namespace()
        names = [f"t{i}" for i in range(count)]
        await asyncio.gather(*(self.kube.create(reference_chain(n, namespace, 2)) for n in names))
        await self.until_ready(namespace, set(names))
        await self.settled()
        members = {controller_identity(n): n for n in self.controllers}
        victim = self.controllers[-1]
        theirs = {n for n in names if members[str(owner(f"{namespace}/{n}", members))] == victim}
        os.kill(self.pids[victim], signal.SIGKILL)
        began = time.perf_counter()

        async def change(name: str) -> None:
            moved = reference_chain(name, namespace, 2, seed="moved")
            await self.kube.patch(
                API, "Bundle", name, {"spec": moved["spec"]}, namespace=namespace, content_type=MERGE_PATCH
            )

        await asyncio.gather(*(change(n) for n in names))
        others = asyncio.create_task(self.until_ready(namespace, set(names) - theirs, generation=2))
        await self.until_ready(namespace, theirs, generation=2)
        dead_share = time.perf_counter() - began
        await others
        return {
            "bundles": count,
            "dead_share": len(theirs),
            "dead_share_ready_s": dead_share,
            "lease_s": float(os.environ.get("SMITH_LEASE_SECONDS", "15")),
        }
