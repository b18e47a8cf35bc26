"""Convergence latency against the floor: each shape, chains of references, planning ahead."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench.harness import Harness
from bench.peers import Kro
from bench.shapes import (
    API,
    REFERENCE_CHAIN,
    SHAPES,
    Json,
    bundle,
    compared,
    config_map,
    layered,
    reference_chain,
)
from smith_controlplane.services import cpu_seconds


class Latency(Harness):
    """Convergence latency against the floor: each shape, chains of references, planning ahead."""

    async def smith_once(self, waves: list[list[str]], namespaces: list[str] | None = None) -> float:
        namespace = await self.namespace()
        if namespaces is not None:
            namespaces.append(namespace)
        began = time.perf_counter()
        await self.kube.create(bundle("b", namespace, waves))
        await self.until_ready(namespace, {"b"})
        return time.perf_counter() - began

    async def floor_same_writes(self, waves: list[list[str]]) -> float:
        """A plain client writing what Smith writes for the objects: each wave concurrently, by
        server-side apply, labelled, owned by every object of the wave before (from their answers) and
        by a controller owner (the namespace standing in for the Bundle). Not the Bundle's own writes
        (its finalizer, its status): what is left between this and Smith is those and Smith itself."""
        namespace = await self.namespace()
        space = await self.kube.get("v1", "Namespace", namespace)
        began = time.perf_counter()
        await self._object_writes(namespace, waves, space)
        return time.perf_counter() - began

    async def floor_bundle_writes(self, waves: list[list[str]], status: Json) -> float:
        """A plain client making every API write a Bundle's convergence needs: the Bundle created (a
        BundleCopy: the same schema and cost, no service watching it), Smith's object writes owned by
        it (as `floor_same_writes`), then `status`, what a converged Bundle of this shape holds. Smith
        makes these, its finalizer (beside the first wave) and the work between them; nothing can
        converge a Bundle in less time on the same plane."""
        namespace = await self.namespace()
        began = time.perf_counter()
        await self.bundle_writes(namespace, "b", waves, status)
        return time.perf_counter() - began

    async def smith_chains(self, count: int) -> float:
        """Seconds from creating `count` Bundles, each a reference chain, at once to all Ready."""
        namespace = await self.namespace()
        began = time.perf_counter()
        await asyncio.gather(
            *(self.kube.create(reference_chain(f"b{i}", namespace, REFERENCE_CHAIN)) for i in range(count))
        )
        await self.until_ready(namespace, {f"b{i}" for i in range(count)})
        return time.perf_counter() - began

    async def floor_chains(self, count: int) -> float:
        """The same with a plain client passing each value along: read the ConfigMap before, create the
        next with it; the chains side by side."""
        namespace = await self.namespace()

        async def one(prefix: str) -> None:
            await self.kube.create(config_map(f"{prefix}c0", namespace, "seed"))
            for i in range(1, REFERENCE_CHAIN):
                before = await self.kube.get("v1", "ConfigMap", f"{prefix}c{i - 1}", namespace)
                await self.kube.create(config_map(f"{prefix}c{i}", namespace, before["data"]["k"]))

        began = time.perf_counter()
        await asyncio.gather(*(one(f"p{i}-") for i in range(count)))
        return time.perf_counter() - began

    async def chains(self, count: int, kro: Kro | None) -> None:
        """`count` reference chains at once: Smith, the plain client and (with --peers) kro."""
        row = {
            "count": count,
            "smith_s": await self.smith_chains(count),
            "floor_s": await self.floor_chains(count),
        }
        if kro is not None:
            row["kro_s"] = await kro.chains(await self.namespace(), count)
        self.results["chains_at_once"] = row

    async def quiet(self, measure: Callable[..., Awaitable[float]], *args: Any) -> float:
        """`measure` from a quiet system: a latency is one Bundle's, not the tail of the one before (its
        Events, posted in the background, and the pass its objects' watch events bring) as well."""
        await self.settled()
        await self.events_drained()
        return await measure(*args)

    async def latency(self, repeats: int, kro: Kro | None = None) -> None:
        table = {}
        smith = [await self.quiet(self.smith_chains, 1) for _ in range(repeats)]
        floor = [await self.quiet(self.floor_chains, 1) for _ in range(repeats)]
        table[f"chain of {REFERENCE_CHAIN}, references"] = compared(smith, floor)
        if kro is not None:
            peer = kro

            async def kro_once() -> float:
                return await peer.chains(await self.namespace(), 1)

            self.results["kro_chain_s"] = [await self.quiet(kro_once) for _ in range(repeats)]
        for label, (depth, width) in SHAPES.items():
            waves = layered(depth, width)
            made: list[str] = []
            smith = [await self.quiet(self.smith_once, waves, made) for _ in range(repeats)]
            status = (await self.kube.get(API, "Bundle", "b", made[-1]))["status"]
            floor = [await self.quiet(self.floor_once, waves) for _ in range(repeats)]
            same = [await self.quiet(self.floor_same_writes, waves) for _ in range(repeats)]
            writes = [await self.quiet(self.floor_bundle_writes, waves, status) for _ in range(repeats)]
            table[label] = compared(smith, floor, same_writes=same, bundle_writes=writes)
        self.results["latency"] = table

    async def ahead(self, repeats: int) -> Json:
        """The reference chain and the 5 waves from quiet (`repeats` each), and the CPU of Smith's
        services per chain."""
        chains, cpu = [], []
        for _ in range(repeats):
            await self.settled()
            await self.events_drained()
            before = cpu_seconds(self.pids)
            chains.append(await self.smith_chains(1))
            await self.settled()
            await self.events_drained()
            cpu.append(sum(cpu_seconds(self.pids).values()) - sum(before.values()))
        waves = [await self.quiet(self.smith_once, layered(5, 10)) for _ in range(repeats)]
        return {"chain_s": chains, "smith_cpu_per_chain_s": cpu, "layered_s": waves}
