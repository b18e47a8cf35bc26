"""How fast Smith reacts to a change; what a Bundle of several passes costs in status writes."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from bench.harness import Harness
from bench.shapes import API, SLEEPERS, Json, config_map, pct, sleeper_chain
from smith_kube.client import MERGE_PATCH


class Reaction(Harness):
    """How fast Smith reacts to a change; what a Bundle of several passes costs in status writes."""

    async def changed(self, namespace: str, write: Json, target: str, value: str) -> float:
        """Seconds from writing `write` until a watch shows ConfigMap `target` holding `value`."""
        began = time.perf_counter()
        # resourceVersions are etcd revisions: watch from just before the write's own (the object's previous
        # one may be older than etcd's last compaction; nothing before the write matters, the write may).
        since = str(int((await self.kube.replace(write))["metadata"]["resourceVersion"]) - 1)
        async for event in self.kube.watch("v1", "ConfigMap", namespace, resource_version=since):
            obj = event.object
            if obj.get("metadata", {}).get("name") == target and (obj.get("data") or {}).get("k") == value:
                break
        return time.perf_counter() - began

    async def reaction(self, namespace: str, repeats: int) -> None:
        """Smith: a Bundle's resource changed. Floor: a plain client replacing the object itself."""
        smith, floor = [], []
        for i in range(repeats):
            current = await self.kube.get(API, "Bundle", f"b{i}", namespace)
            resource = current["spec"]["resources"][0]["spec"]["object"]
            resource["data"]["k"] = f"changed-{i}"
            smith.append(await self.changed(namespace, current, resource["metadata"]["name"], f"changed-{i}"))
            plain = config_map(f"plain-{i}", namespace)
            await self.kube.create(plain)
            plain = await self.kube.get("v1", "ConfigMap", f"plain-{i}", namespace)
            plain["data"]["k"] = f"changed-{i}"
            floor.append(await self.changed(namespace, plain, f"plain-{i}", f"changed-{i}"))
        self.results["reaction"] = {
            "median_s": statistics.median(smith),
            "p95_s": pct(smith, 0.95),
            "floor_median_s": statistics.median(floor),
            "floor_p95_s": pct(floor, 0.95),
            "ratio_median": statistics.median(smith) / statistics.median(floor),
            "repeats": repeats,
        }

    # 4b. status writes of Bundles that take several passes ------------------------------------------

    async def passes(self, count: int, depth: int, *, at_once: bool) -> Json:
        """`count` Bundles, at once or one after the other, each `depth` Sleepers in a chain (a pass
        each: the bench wakes every Sleeper as soon as it is made, as a fast controller would) -> all
        Ready: seconds, Bundle status writes and reconciles per Bundle."""
        namespace = await self.namespace()
        waker = asyncio.create_task(self._wake_sleepers(namespace))
        try:
            writes, (reconciles, _) = (
                (await self.writes(subresource="status"))["bundles"],
                await self.reconciles(),
            )
            began = time.perf_counter()
            names = [f"w{i}" for i in range(count)]
            for batch in [names] if at_once else [[n] for n in names]:
                await asyncio.gather(*(self.kube.create(sleeper_chain(n, namespace, depth)) for n in batch))
                await self.until_ready(namespace, set(batch))
            took = time.perf_counter() - began
            await self.settled()
            written = (await self.writes(subresource="status"))["bundles"] - writes
            passes = (await self.reconciles())[0] - reconciles
        finally:
            waker.cancel()
        return {
            "bundles": count,
            "depth": depth,
            "seconds": took,
            "status_writes_per_bundle": written / count,
            "reconciles_per_bundle": passes / count,
        }

    async def _wake_sleepers(self, namespace: str) -> None:
        woken: set[asyncio.Task[Any]] = set()
        async for event in self.kube.watch(f"{SLEEPERS}/v1", "Sleeper", namespace):
            if event.type == "ADDED":
                wake = self.kube.patch(
                    f"{SLEEPERS}/v1",
                    "Sleeper",
                    event.object["metadata"]["name"],
                    {"status": {"state": "Awake"}},
                    namespace=namespace,
                    subresource="status",
                    content_type=MERGE_PATCH,
                )
                woken.add(task := asyncio.ensure_future(wake))
                task.add_done_callback(woken.discard)
