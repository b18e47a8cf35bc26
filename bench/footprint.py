"""Memory: with what the run left, with thousands of Bundles more, and after a restart."""

from __future__ import annotations

import asyncio
import time

from bench.harness import Harness
from bench.shapes import Json, bundle, layered


class Footprint(Harness):
    """Memory: with what the run left, with thousands of Bundles more, and after a restart."""

    async def footprint(self, count: int) -> None:
        """Every service's memory with what the run left converged (the baseline) and with `count` more
        Bundles of 10 objects (2 waves) converged on top of it."""
        await self.settled()
        await self.events_drained()
        before, known = self.rss_mib(), await self.objects()
        namespace = await self.namespace()
        began = time.perf_counter()
        for start in range(0, count, 500):  # created 500 at a time; Smith starts on them at once
            await asyncio.gather(
                *(
                    self.kube.create(bundle(f"f{i}", namespace, layered(2, 5, prefix=f"f{i}-r")))
                    for i in range(start, min(count, start + 500))
                )
            )
        await self.until_ready(namespace, {f"f{i}" for i in range(count)})
        seconds = time.perf_counter() - began
        await self.events_drained()
        await self.settled()
        after, total = self.rss_mib(), await self.objects()
        added = total[1] - known[1]
        self.results["footprint_large"] = {
            "baseline": {"bundles": known[0], "objects": known[1], "rss_mib": before},
            "loaded": {
                "bundles": total[0],
                "objects": total[1],
                "rss_mib": after,
                "peak_mib": self.rss_mib(peak=True),
            },
            "converge_seconds": seconds,
            "kib_per_object": {n: (after[n] - before[n]) * 1024 / added for n in after},
        }

    async def restarted(self) -> Json:
        """Fresh services started over every Bundle the run left (as after an upgrade or a crash): how
        long until each is reconciled once and all is quiet, and each service's memory then and at its
        peak on the way (a restart lists everything at once: the figure a memory limit must allow)."""
        began = time.perf_counter()
        await self.settled()
        seconds = time.perf_counter() - began
        bundles, objects = await self.objects()
        return {
            "bundles": bundles,
            "objects": objects,
            "settle_seconds": seconds,
            "rss_mib": self.rss_mib(),
            "peak_mib": self.rss_mib(peak=True),
        }
