"""The system under test as every phase sees it: its processes, their metrics, and waiting on them."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.controlplane import rss_mib
from bench.shapes import API, COPIES, SLEEPERS, WRITE_VERBS, Json, bundle, member, owned
from smith_engine.conditions import condition_true
from smith_engine.model import JSONObject
from smith_engine.planner import dependency_reference
from smith_kube import KubeClient


@dataclass
class Harness:
    """Smith's services running as processes against a local plane, and what every phase asks of
    them: their metrics and memory, when they are settled, when Bundles are Ready, the writes made."""

    kube: KubeClient
    pids: dict[str, int]
    plane_pids: dict[str, int]
    metrics: dict[str, int]  # each service's metrics port
    results: dict[str, Any] = field(default_factory=dict)

    async def controller_metrics(
        self, http: aiohttp.ClientSession, service: str = "smith_controller"
    ) -> dict[str, float]:
        """A service's own metrics (the controller's unless said): name{labels} -> value (empty while it
        is not ready)."""
        base = f"http://127.0.0.1:{self.metrics[service]}"
        try:
            async with http.get(f"{base}/readyz") as ready:
                if ready.status != 200:
                    return {}
            async with http.get(f"{base}/metrics") as response:
                text = await response.text()
        except aiohttp.ClientError:
            return {}
        return {
            k: float(v) for k, _, v in (ln.rpartition(" ") for ln in text.splitlines()) if k[:6] == "smith_"
        }

    @property
    def controllers(self) -> list[str]:
        return sorted(n for n in self.pids if n.startswith("smith_controller"))

    async def settled(self, executors: int = 3) -> None:
        """Wait until every controller replica is ready, knows every executor and all the replicas, and
        has had nothing to do for 1 s."""
        quiet, last = 0, -1.0
        async with aiohttp.ClientSession() as http:
            while quiet < 10:
                done, idle = 0.0, True
                for name in self.controllers:
                    seen = await self.controller_metrics(http, name)
                    beats = sum(k.startswith("smith_executor_heartbeat_timestamp_seconds{") for k in seen)
                    done += sum(
                        v for k, v in seen.items() if k.startswith("smith_reconcile_duration_seconds_count")
                    )
                    idle = idle and (
                        bool(seen)
                        and beats >= executors
                        and seen.get("smith_work_queue_depth") == 0
                        and seen.get("smith_controller_members") == len(self.controllers)
                    )
                quiet = quiet + 1 if idle and done == last else 0
                last = done
                await asyncio.sleep(0.1)

    async def namespace(self) -> str:
        name = f"b-{uuid.uuid4().hex[:8]}"
        await self.kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        return name

    async def until_ready(self, namespace: str, names: set[str], generation: int = 0) -> None:
        """Wait (by watching, not polling) until every named Bundle in `namespace` is Ready (at
        `generation` or later, when given)."""

        def done(b: Json) -> bool:
            return (
                condition_true(b, "Ready")
                and (b.get("status") or {}).get("observedGeneration", 0) >= generation
            )

        listing = await self.kube.list(API, "Bundle", namespace)
        pending = names - {b["metadata"]["name"] for b in listing["items"] if done(b)}
        version = listing["metadata"]["resourceVersion"]
        while pending:
            async for event in self.kube.watch(API, "Bundle", namespace, resource_version=version):
                version = event.object["metadata"].get("resourceVersion", version)
                if event.type != "BOOKMARK" and done(event.object):
                    pending.discard(event.object["metadata"]["name"])
                if not pending:
                    return

    def rss_mib(self, *, peak: bool = False) -> dict[str, float]:
        return {name: rss_mib(pid, peak=peak) for name, pid in self.pids.items()}

    async def objects(self) -> tuple[int, int]:
        """(Bundles, objects they list) in the cluster."""
        bundles = (await self.kube.list(API, "Bundle"))["items"]
        return len(bundles), sum(len(b["spec"]["resources"]) for b in bundles)

    async def writes(self, *, dry_run: bool = False, subresource: str | None = None) -> dict[str, float]:
        """Write requests the API server has served so far, by resource (its own metrics); with
        `dry_run`, the server-side dry runs instead (which write nothing); with `subresource`, only
        the writes of that subresource."""
        text = await self.kube.request_text("GET", "/metrics")
        total: dict[str, float] = defaultdict(float)
        for line in text.splitlines():
            if (
                line.startswith("apiserver_request_total{")
                and any(f'verb="{v}"' in line for v in WRITE_VERBS)
                and ('dry_run=""' not in line) == dry_run
                and (subresource is None or f'subresource="{subresource}"' in line)
            ):
                labels, value = line.rsplit(" ", 1)
                resource = labels.partition('resource="')[2].partition('"')[0]
                total[resource] += float(value)
        return total

    async def reconciles(self) -> tuple[float, float]:
        """(count, seconds) of the controller's reconciles so far."""
        async with aiohttp.ClientSession() as http:
            seen = await self.controller_metrics(http)
        count = sum(v for k, v in seen.items() if k.startswith("smith_reconcile_duration_seconds_count"))
        total = sum(v for k, v in seen.items() if k.startswith("smith_reconcile_duration_seconds_sum"))
        return count, total

    async def controller_metric(self, name: str) -> float:
        """The sum of the controller's samples of metric `name` so far."""
        async with aiohttp.ClientSession() as http:
            seen = await self.controller_metrics(http)
        return sum(v for k, v in seen.items() if k == name or k.startswith(name + "{"))

    async def floor_once(self, waves: list[list[str]]) -> float:
        """A plain client doing the same job: each wave created concurrently, after the one before."""
        namespace = await self.namespace()
        began = time.perf_counter()
        for wave in waves:
            await asyncio.gather(*(self.kube.create(member(n, namespace)) for n in wave))
        return time.perf_counter() - began

    async def events_drained(self) -> tuple[float, float]:
        """Wait until the status service has posted every Event of the run so far (they go in the
        background, after the Bundles are Ready); (the backlog found, seconds it took to drain)."""
        began, backlog = time.perf_counter(), -1.0
        async with aiohttp.ClientSession() as http:
            while (
                pending := (await self.controller_metrics(http, "smith_status")).get("smith_events_pending")
            ) != 0:
                backlog = max(backlog, pending or 0.0)
                await asyncio.sleep(0.1)
        return max(backlog, 0.0), time.perf_counter() - began

    async def bundle_writes(self, namespace: str, name: str, waves: list[list[str]], status: Json) -> None:
        """Every API write a Bundle's convergence needs, by a plain client: the Bundle created (a
        BundleCopy: the same schema and cost, no service watching it), Smith's object writes owned by it,
        then `status`, what a converged Bundle of this shape holds."""
        copy = bundle(name, namespace, waves) | {"apiVersion": f"{SLEEPERS}/v1", "kind": COPIES}
        made = await self.kube.create(copy)
        await self._object_writes(namespace, waves, made)
        patch = {"status": status}
        await self.kube.patch(
            made["apiVersion"], COPIES, name, patch, namespace=namespace, subresource="status"
        )

    async def _object_writes(self, namespace: str, waves: list[list[str]], controller: JSONObject) -> None:
        """Smith's object writes for `waves`, wave by wave, with `controller` as the controller owner."""
        owners: list[Json] = [{**dependency_reference(controller), "controller": True}]
        for wave in waves:
            made = await asyncio.gather(
                *(self.kube.apply(owned(n, namespace, owners), field_manager="smith") for n in wave)
            )
            owners = [*(dependency_reference(m) for m in made), owners[-1]]


def ours(writes: dict[str, float]) -> float:
    """Requests by Smith: all but the API server's own lease renewals and the executors' heartbeats."""
    return sum(n for r, n in writes.items() if r not in ("leases", "executors"))
