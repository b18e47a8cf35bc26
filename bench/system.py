"""Smith as a whole, against a local control plane, every service its own process: how fast it
converges compared with a plain client doing the same job, how that grows with the number of
Bundles, what it costs when idle, how fast it reacts, its memory, and where a reconcile's time goes.

Every figure stands next to a baseline measured in the same run; nothing here is asserted."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import statistics
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from bench.controlplane import rss_mib
from bench.peers import Kro, running_kro
from smith_controlplane.objects import crd_object
from smith_controlplane.plane import ControlPlane
from smith_controlplane.services import controller_identity, cpu_seconds, running_services
from smith_engine.conditions import condition_true
from smith_engine.model import JSONObject
from smith_engine.planner import dependency_reference
from smith_engine.readiness import READY_WHEN_PATH, READY_WHEN_VALUE
from smith_engine.sharding import owner
from smith_kube import KubeClient, KubeConfig
from smith_kube.client import MERGE_PATCH
from smith_kube.manifests import create_all, create_objects

ROOT = Path(__file__).resolve().parent.parent
API = "smith.atlassian.com/v1"
Json = dict[str, Any]
WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE", "APPLY", "CREATE", "UPDATE", "DELETECOLLECTION"})


# --- shapes ---------------------------------------------------------------------------------------


def layered(waves: int, width: int, prefix: str = "r") -> list[list[str]]:
    """Names in waves; every resource depends on every resource of the wave before."""
    return [[f"{prefix}{w}-{i}" for i in range(width)] for w in range(waves)]


SHAPES = {"chain (depth 10)": (10, 1), "fan-out (width 50)": (1, 50), "layered (5 waves x 10)": (5, 10)}


def config_map(name: str, namespace: str | None = None, value: str = "v") -> Json:
    meta: Json = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": value}}


def member(name: str, namespace: str | None = None) -> Json:
    """The object of one resource: ConfigMaps and Secrets in turn (by the name's last number)."""
    obj = config_map(name, namespace)
    if int(name.rsplit("-", 1)[1]) % 2:
        obj |= {"kind": "Secret", "data": {"k": base64.b64encode(b"v").decode()}}
    return obj


REFERENCE_CHAIN = 10  # ConfigMaps, each holding a value read from the one before (a reference)
CHAINS_AT_ONCE = 100
PASSES_AT_ONCE = 100  # Bundles of Sleepers at once (the status window's figure)
PASSES_ALONE = 10  # and one after the other
CONCURRENCY = 16  # the controller's reconciles at once (SMITH_CONCURRENCY's default); kro gets as many


def reference_chain(name: str, namespace: str, depth: int, seed: str = "seed") -> Json:
    """Bundle `name`: ConfigMaps `name`-c0…, each holding the value of the one before (a reference)."""
    resources: list[Json] = [{"name": "c0", "spec": {"object": config_map(f"{name}-c0", value=seed)}}]
    for i in range(1, depth):
        ref = {"name": "v", "resource": f"c{i - 1}", "path": "data.k"}
        obj = config_map(f"{name}-c{i}", value="!{v}")
        resources.append(
            {"name": f"c{i}", "dependsOn": [f"c{i - 1}"], "references": [ref], "spec": {"object": obj}}
        )
    return {
        "apiVersion": API,
        "kind": "Bundle",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"resources": resources},
    }


SLEEPERS = "bench.smith.test"  # a kind Ready when its status says Awake; the bench wakes each


def sleeper_chain(name: str, namespace: str, depth: int) -> Json:
    """Bundle `name`: Sleepers s0…, each made when the one before is awake (a pass each), then a
    ConfigMap."""
    resources: list[Json] = []
    for i in range(depth):
        obj = {"apiVersion": f"{SLEEPERS}/v1", "kind": "Sleeper", "metadata": {"name": f"{name}-s{i}"}}
        resources.append({"name": f"s{i}", "spec": {"object": obj}, "dependsOn": [f"s{i - 1}"] if i else []})
    resources.append(
        {"name": "done", "dependsOn": [f"s{depth - 1}"], "spec": {"object": config_map(f"{name}-d")}}
    )
    return {
        "apiVersion": API,
        "kind": "Bundle",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"resources": resources},
    }


# Smith's Bundle kind under another name (in the Sleepers' group): no service watches it
COPIES = "BundleCopy"


def bundle_copy_crd() -> Json:
    """Smith's Bundle CRD as it is (schema, validation rules, status subresource) for a kind no Smith
    service watches: writing a BundleCopy costs the API server what writing that Bundle costs."""
    crd: Json = yaml.safe_load((ROOT / "deploy" / "crds" / "bundle.yaml").read_text())
    plural = "bundlecopies"
    crd["metadata"]["name"] = f"{plural}.{SLEEPERS}"
    crd["spec"]["group"] = SLEEPERS
    crd["spec"]["names"] = {
        "kind": COPIES,
        "listKind": f"{COPIES}List",
        "plural": plural,
        "singular": "bundlecopy",
    }
    return crd


def owned(name: str, namespace: str, owners: list[Json]) -> Json:
    """`member(name)` as Smith applies it: labelled with its Bundle's name, with these owners."""
    obj = member(name, namespace)
    obj["metadata"] |= {
        "labels": {"smith.atlassian.com/BundleName": "b"},
        "ownerReferences": owners,
    }
    return obj


def bundle(name: str, namespace: str, waves: list[list[str]]) -> Json:
    resources = []
    for w, wave in enumerate(waves):
        for n in wave:
            item: Json = {"name": n, "spec": {"object": member(n)}}
            if w:
                item["dependsOn"] = waves[w - 1]
            resources.append(item)
    return {
        "apiVersion": API,
        "kind": "Bundle",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"resources": resources},
    }


def compared(smith: list[float], floor: list[float], **baselines: list[float]) -> dict[str, float]:
    """Smith's times next to the baseline's (and other baselines', by name), from the same run."""
    row = {
        "smith_median_s": statistics.median(smith),
        "smith_p95_s": pct(smith, 0.95),
        "floor_median_s": statistics.median(floor),
        "floor_p95_s": pct(floor, 0.95),
        "ratio_median": statistics.median(smith) / statistics.median(floor),
    }
    for name, times in baselines.items():
        row |= {
            f"{name}_median_s": statistics.median(times),
            f"ratio_{name}": statistics.median(smith) / statistics.median(times),
        }
    return row


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --- the system under test ------------------------------------------------------------------------


@dataclass
class Bench:
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

    # 1. convergence latency vs the floor -----------------------------------------------------------

    async def smith_once(self, waves: list[list[str]], namespaces: list[str] | None = None) -> float:
        namespace = await self.namespace()
        if namespaces is not None:
            namespaces.append(namespace)
        began = time.perf_counter()
        await self.kube.create(bundle("b", namespace, waves))
        await self.until_ready(namespace, {"b"})
        return time.perf_counter() - began

    async def floor_once(self, waves: list[list[str]]) -> float:
        """A plain client doing the same job: each wave created concurrently, after the one before."""
        namespace = await self.namespace()
        began = time.perf_counter()
        for wave in waves:
            await asyncio.gather(*(self.kube.create(member(n, namespace)) for n in wave))
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
        copy = bundle("b", namespace, waves) | {"apiVersion": f"{SLEEPERS}/v1", "kind": COPIES}
        began = time.perf_counter()
        made = await self.kube.create(copy)
        await self._object_writes(namespace, waves, made)
        await self.kube.patch(
            made["apiVersion"], COPIES, "b", {"status": status}, namespace=namespace, subresource="status"
        )
        return time.perf_counter() - began

    async def _object_writes(self, namespace: str, waves: list[list[str]], controller: JSONObject) -> None:
        """Smith's object writes for `waves`, wave by wave, with `controller` as the controller owner."""
        owners: list[Json] = [{**dependency_reference(controller), "controller": True}]
        for wave in waves:
            made = await asyncio.gather(
                *(self.kube.apply(owned(n, namespace, owners), field_manager="smith") for n in wave)
            )
            owners = [*(dependency_reference(m) for m in made), owners[-1]]

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

    # 2. throughput and scale ------------------------------------------------------------------------

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
            rows[count] = {
                "seconds": seconds,
                "objects_per_s": count * 10 / seconds,
                "floor_seconds": floor,
                "floor_objects_per_s": count * 10 / floor,
                "ratio": seconds / floor,
            }
        base = counts[0]
        for count in counts:
            rows[count]["time_vs_smallest"] = rows[count]["seconds"] / rows[base]["seconds"]
            rows[count]["count_vs_smallest"] = count / base
        self.results["throughput"] = rows
        return namespace  # the largest set stays for the idle, reaction and footprint figures

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

    # 3. idle cost -----------------------------------------------------------------------------------

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

    async def change_detection(self, seconds: float) -> None:
        """What deciding "nothing to apply" costs for converged Bundles. Cold: fresh executors know
        nothing, so the first reconcile of every Bundle checks each object with one server-side dry
        run. Warm: resyncs (every SMITH_RESYNC_SECONDS) find every object in the executors' memory and
        send nothing. Writes must be 0 in both; the baseline is the same reconciles' count and time."""

        async def snapshot() -> tuple[float, float, float, float, float]:
            count, spent = await self.reconciles()
            cpu = sum(cpu_seconds(self.pids).values())
            return ours(await self.writes()), ours(await self.writes(dry_run=True)), count, spent, cpu

        start, began = await snapshot(), time.perf_counter()
        await self.settled()
        cold_seconds = time.perf_counter() - began
        bundles = len((await self.kube.list(API, "Bundle"))["items"])
        settled = await snapshot()
        await asyncio.sleep(seconds)
        end = await snapshot()

        def phase(a: tuple[float, ...], b: tuple[float, ...]) -> dict[str, float]:
            writes, dry_runs, count, spent, cpu = (y - x for x, y in zip(a, b, strict=True))
            return {
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

    # 4. reaction time -------------------------------------------------------------------------------

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

    # 5. footprint -----------------------------------------------------------------------------------

    def rss_mib(self, *, peak: bool = False) -> dict[str, float]:
        return {name: rss_mib(pid, peak=peak) for name, pid in self.pids.items()}

    async def objects(self) -> tuple[int, int]:
        """(Bundles, objects they list) in the cluster."""
        bundles = (await self.kube.list(API, "Bundle"))["items"]
        return len(bundles), sum(len(b["spec"]["resources"]) for b in bundles)

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


def ours(writes: dict[str, float]) -> float:
    """Requests by Smith: all but the API server's own lease renewals and the executors' heartbeats."""
    return sum(n for r, n in writes.items() if r not in ("leases", "executors"))


def read_spans(logs: Path) -> list[Json]:
    """The spans the services printed to their logs (console exporter: one indented JSON each)."""
    spans: list[Json] = []
    decoder = json.JSONDecoder()
    for log in logs.glob("*.log"):
        text = log.read_text(errors="replace")
        pos = text.find('{\n    "name"')
        while pos != -1:
            try:
                span, end = decoder.raw_decode(text, pos)
            except json.JSONDecodeError:
                end = pos + 1
            else:
                spans.append(span)
            pos = text.find('{\n    "name"', end)
    return spans


def seconds(span: Json) -> float:
    return (
        datetime.fromisoformat(span["end_time"]) - datetime.fromisoformat(span["start_time"])
    ).total_seconds()


def covered(group: list[Json]) -> float:
    """Wall-clock time covered by (possibly concurrent) spans."""
    total, end = 0.0, None
    for start, stop in sorted(
        (datetime.fromisoformat(s["start_time"]), datetime.fromisoformat(s["end_time"])) for s in group
    ):
        if end is None or start > end:
            total, end = total + (stop - start).total_seconds(), stop
        elif stop > end:
            total, end = total + (stop - end).total_seconds(), stop
    return total


def traced_share(logs: Path, names: list[str]) -> dict[str, float]:
    """Where a reconcile's time goes, for the reconciles whose root span is one of `names`: each gRPC
    call's client span is split into the server's own time and the hop (network, serialization,
    queueing); the executors' time into their API calls and the rest."""
    spans = read_spans(logs)
    roots = [s for s in spans if s["name"] in names]
    total = sum(seconds(s) for s in roots) or 1.0
    root_ids = {s["context"]["span_id"]: s["context"]["trace_id"] for s in roots}
    calls = [s for s in spans if s.get("parent_id") in root_ids]  # the controller's client spans
    served = {s["parent_id"]: s for s in spans if str(s.get("kind", "")).endswith("SERVER")}

    def server_time(service: str) -> float:
        return sum(
            seconds(served[c["context"]["span_id"]])
            for c in calls
            if c["name"].startswith(f"/smith.v1.{service}/") and c["context"]["span_id"] in served
        )

    hops = sum(
        seconds(c) - seconds(served[c["context"]["span_id"]])
        for c in calls
        if c["context"]["span_id"] in served
    )
    api = sum(
        covered([s for s in spans if s["name"] in ("apply", "delete") and s["context"]["trace_id"] == trace])
        for trace in set(root_ids.values())
    )
    in_calls = sum(
        covered([c for c in calls if c["context"]["trace_id"] == t]) for t in set(root_ids.values())
    )
    return {
        "reconciles": float(len(roots)),
        "median reconcile ms": statistics.median(seconds(s) for s in roots) * 1000 if roots else 0.0,
        "gRPC hops (network, serialization, queueing)": hops / total,
        "planning (planner)": server_time("Planner") / total,
        "API calls in the executors (wall-clock)": api / total,
        "the executors' other work (readiness, checks)": (server_time("Executor") - api) / total,
        "status report (status write; Events go in the background)": server_time("Status") / total,
        "the controller itself (outside any call)": (total - in_calls) / total,
    }


@contextlib.contextmanager
def system(
    plane: ControlPlane,
    kube: KubeClient,
    logs: Path,
    env: dict[str, str] | None = None,
    controllers: int = 1,
    insecure: bool = False,
) -> Iterator[Bench]:
    metrics: dict[str, int] = {}
    with running_services(
        plane.kubeconfig, logs, env=env, metrics=metrics, controllers=controllers, insecure=insecure
    ) as started:
        yield Bench(
            kube=kube,
            pids={name: p.pid for name, p in started.items()},
            plane_pids={p.name: p.popen.pid for p in plane.processes},
            metrics=metrics,
        )


async def measure(
    plane: ControlPlane,
    *,
    repeats: int,
    counts: list[int],
    idle_seconds: float,
    peers: bool = False,
    footprint: int = 0,
    replicas: int = 0,
) -> dict[str, Any]:
    logs = ROOT / ".smith" / "bench"
    async with KubeClient(KubeConfig.load(plane.kubeconfig)) as kube:
        await create_all(kube, (ROOT / "deploy" / "crds").glob("*.yaml"), namespaces=["smith-system"])
        sleepers = crd_object(
            SLEEPERS, "Sleeper", **{READY_WHEN_PATH: "{$.status.state}", READY_WHEN_VALUE: "Awake"}
        )
        await create_objects(kube, [sleepers, bundle_copy_crd()])
        with system(plane, kube, logs / "plain") as bench, contextlib.ExitStack() as stack:
            kro = None
            if peers:
                stack.enter_context(running_kro(plane.kubeconfig, CONCURRENCY, logs / "peers"))
                kro = Kro(kube)
                await kro.define(REFERENCE_CHAIN)
            await bench.settled()
            empty = bench.rss_mib()
            await bench.latency(repeats, kro)
            await bench.chains(CHAINS_AT_ONCE, kro)
            namespace = await bench.throughput(counts)
            await bench.idle(idle_seconds)
            loaded = bench.rss_mib()
            bench.results["footprint"] = {
                "bundles": counts[-1],
                "objects": counts[-1] * 10,
                "rss_mib": loaded,
                "rss_empty_mib": empty,
                "kib_per_bundle": {n: (loaded[n] - empty[n]) * 1024 / counts[-1] for n in loaded},
            }
            await bench.reaction(namespace, repeats=max(repeats, 5))
            await bench.settled()  # the changed Bundles' statuses and Events are written here, not by
            await bench.events_drained()  # the next phase's fresh services (which would count them)
            results = bench.results
        # Change detection: fresh processes (executors that remember nothing) with a short resync.
        with system(plane, kube, logs / "resync", env={"SMITH_RESYNC_SECONDS": "10"}) as bench:
            await bench.change_detection(seconds=max(idle_seconds / 2, 25))
            results["change_detection"] = bench.results["change_detection"]
        # Traced: a new set of processes (exporting spans to their logs) first settles the Bundles
        # that exist (re-assessing every one), then converges fresh ones; only those are counted.
        traced: list[str] = []
        with system(plane, kube, logs / "traced", env={"OTEL_TRACES_EXPORTER": "console"}) as bench:
            await bench.settled()
            for _ in range(repeats):
                await bench.smith_once(layered(5, 10, prefix="t"), namespaces=traced)
            await bench.settled()  # the last reconcile ends, its spans written, before the services stop
        results["where_time_goes"] = traced_share(logs / "traced", [f"reconcile {ns}/b" for ns in traced])
        # Planning ahead: fresh services with it off, then on (the default), the same chains and waves.
        results["ahead"] = {}
        for ahead in ("0", "1"):
            with system(plane, kube, logs / f"ahead-{ahead}", env={"SMITH_PLAN_AHEAD": ahead}) as bench:
                await bench.settled()
                results["ahead"][ahead] = await bench.ahead(repeats)
        # Security: fresh services in the development mode without it, then with it (the default: TLS,
        # the controller's token reviewed by the API server, the executors' re-checks), the same job.
        results["security"] = {}
        for mode in ("off", "on"):
            with system(plane, kube, logs / f"security-{mode}", insecure=mode == "off") as bench:
                await bench.settled()
                results["security"][mode] = await bench.ahead(repeats)
        # Event loops: fresh services on the standard library's loop, then on uvloop (the default),
        # the same job each.
        results["loops"] = {}
        for loop in ("asyncio", "uvloop"):
            with system(plane, kube, logs / f"loop-{loop}", env={"SMITH_EVENT_LOOP": loop}) as bench:
                await bench.settled()
                results["loops"][loop] = await bench.spread(counts[-1])
        # Status writes of Bundles that need several passes: the same job with the status window off
        # (a write per pass) and on (the default: at most one write a second while in progress).
        results["passes"] = {}
        for window in ("0", "1"):
            with system(plane, kube, logs / f"window-{window}", env={"SMITH_STATUS_WINDOW": window}) as bench:
                await bench.settled()
                results["passes"][window] = {
                    "alone": await bench.passes(PASSES_ALONE, depth=5, at_once=False),
                    "at_once": await bench.passes(PASSES_AT_ONCE, depth=5, at_once=True),
                }
        if replicas > 1:
            # Scale-out: fresh services with one controller, then with `replicas` sharing the Bundles
            # (each first settles every Bundle the run left), the same job; then a replica killed.
            results["replicas"] = {}
            for n in (1, replicas):
                with system(plane, kube, logs / f"replicas-{n}", controllers=n) as bench:
                    await bench.settled()
                    results["replicas"][n] = await bench.spread(counts[-1])
                    if n > 1:
                        results["takeover"] = await bench.takeover(90)
        if footprint:
            # Memory at scale: fresh processes, as a restarted Smith holds what it needs to reconcile.
            with system(plane, kube, logs / "footprint") as bench:
                await bench.footprint(footprint)
                results["footprint_large"] = bench.results["footprint_large"]
            with system(plane, kube, logs / "restarted") as bench:
                results["footprint_large"]["restarted"] = await bench.restarted()
    return results


def run(
    *,
    repeats: int = 3,
    counts: list[int] | None = None,
    idle_seconds: float = 60.0,
    peers: bool = False,
    footprint: int = 0,
    replicas: int = 0,
) -> dict[str, Any]:
    with ControlPlane() as plane:
        return asyncio.run(
            measure(
                plane,
                repeats=repeats,
                counts=counts or [10, 100, 500],
                idle_seconds=idle_seconds,
                peers=peers,
                footprint=footprint,
                replicas=replicas,
            )
        )


BASELINES = {  # the shapes' other baselines, as `compared` names them
    "same_writes": "a plain client making Smith's object writes (server-side apply, label, owners)",
    "bundle_writes": "a plain client making every write of a Bundle's convergence (the Bundle, the "
    "objects as Smith writes them, its final status; not Smith's finalizer, written beside them)",
}


def off_on(title: str, off: Json, on: Json) -> list[str]:
    """The rows of `Bench.ahead`'s figures measured with something off, then on."""
    lines = ["", title, f"  {'':<34}{'off':>9}{'on':>9}{'on/off':>8}"]
    for label, key in (
        (f"chain of {REFERENCE_CHAIN}, references (s)", "chain_s"),
        ("Smith's CPU per chain (s, all services)", "smith_cpu_per_chain_s"),
        ("5 waves x 10 (s)", "layered_s"),
    ):
        a, b = statistics.median(off[key]), statistics.median(on[key])
        lines.append(f"  {label:<34}{a:>9.3f}{b:>9.3f}{b / a:>7.2f}x")
    return lines


def report(r: dict[str, Any]) -> str:
    lines = [
        "",
        "Convergence latency: create Bundle -> Ready; floor: a plain client creating the objects by wave",
        f"  {'shape':<26}{'smith median':>14}{'p95':>9}{'floor median':>14}{'p95':>9}{'ratio':>8}",
    ]
    for label, row in r["latency"].items():
        lines.append(
            f"  {label:<26}{row['smith_median_s']:>13.3f}s{row['smith_p95_s']:>8.3f}s"
            f"{row['floor_median_s']:>13.3f}s{row['floor_p95_s']:>8.3f}s{row['ratio_median']:>7.1f}x"
        )
    for baseline, title in BASELINES.items():
        lines.append(f"  the same shapes against {title}:")
        for label, row in r["latency"].items():
            if f"{baseline}_median_s" in row:
                took, ratio = row[f"{baseline}_median_s"], row[f"ratio_{baseline}"]
                lines.append(
                    f"  {label:<26}{row['smith_median_s']:>13.3f}s{'':>9}{took:>13.3f}s{'':>9}{ratio:>7.1f}x"
                )
    if kro := r.get("kro_chain_s"):
        chain = r["latency"][f"chain of {REFERENCE_CHAIN}, references"]
        lines.append(
            f"  kro, the same chain: median {statistics.median(kro):.3f}s (p95 {pct(kro, 0.95):.3f}s), "
            f"{statistics.median(kro) / chain['floor_median_s']:.1f}x the floor; "
            f"Smith/kro {chain['smith_median_s'] / statistics.median(kro):.2f}"
        )
    chains = r["chains_at_once"]
    objects = chains["count"] * REFERENCE_CHAIN
    said = [f"smith {objects / chains['smith_s']:.1f}", f"plain client {objects / chains['floor_s']:.1f}"]
    if "kro_s" in chains:
        said.append(f"kro {objects / chains['kro_s']:.1f}")
    lines += [
        "",
        f"{chains['count']} reference chains of {REFERENCE_CHAIN} at once -> all Ready, objects/s: "
        + ", ".join(said)
        + f" (smith {chains['smith_s'] / chains['floor_s']:.1f}x the plain client's time)",
    ]
    lines += [
        "",
        "Throughput: N Bundles of 10 ConfigMaps and Secrets (2 waves) at once -> all Ready; floor as above",
        f"  {'bundles':>8}{'seconds':>10}{'objects/s':>11}{'floor obj/s':>13}{'ratio':>8}"
        f"{'time x':>9}{'count x':>9}",
    ]
    for count, row in r["throughput"].items():
        lines.append(
            f"  {count:>8}{row['seconds']:>10.2f}{row['objects_per_s']:>11.1f}"
            f"{row['floor_objects_per_s']:>13.1f}{row['ratio']:>7.1f}x{row['time_vs_smallest']:>9.1f}{row['count_vs_smallest']:>9.1f}"
        )
    idle = r["idle"]
    writes = idle["api_writes"]
    plane_own = writes.get("leases", 0)  # kube-apiserver renews its identity lease every 10 s
    heartbeats = writes.get("executors", 0)
    smith = sum(n for r, n in writes.items() if r not in ("leases", "executors"))
    lines += [
        "",
        f"Idle cost over {idle['seconds']:.0f}s with the largest set converged (apiserver_request_total):",
        f"  API writes by Smith to Bundles, Events or managed objects: {smith:.0f}; executor heartbeats: "
        f"{heartbeats:.0f} (one per executor per 5 min); the API server's own lease renewals "
        f"(baseline): {plane_own:.0f}",
        f"  (measured once the run's Events were posted: {idle.get('events_backlog', 0):.0f} still queued "
        f"when the set was Ready, posted in {idle.get('events_drain_seconds', 0):.1f} s)",
        "  CPU seconds, Smith: " + ", ".join(f"{n} {s:.2f}" for n, s in idle["cpu_seconds"].items()),
        "  CPU seconds, control plane (baseline): "
        + ", ".join(f"{n} {s:.2f}" for n, s in idle["plane_cpu_seconds"].items()),
    ]
    cd = r["change_detection"]
    cold, warm = cd["cold"], cd["warm"]
    lines += [
        "",
        f"Change detection: all {cd['bundles']} converged Bundles of the run, fresh services, resync 10 s",
        f"  {'phase':<44}{'reconciles':>11}{'ms each':>9}{'CPU ms':>8}{'dry runs':>10}{'writes':>8}",
    ]
    for label, row in (
        (f"cold: executors remember nothing ({cd['cold_seconds']:.0f} s)", cold),
        (f"warm: resyncs ({cd['warm_seconds']:.0f} s)", warm),
    ):
        lines.append(
            f"  {label:<44}{row['reconciles']:>11.0f}{row['reconcile_ms']:>9.1f}"
            f"{row['cpu_ms_per_reconcile']:>8.1f}{row['dry_runs']:>10.0f}{row['writes']:>8.0f}"
        )
    react = r["reaction"]
    lines += [
        "",
        "Reaction: one resource of a converged Bundle changed -> object updated; floor: the object replaced",
        f"  smith median {react['median_s'] * 1000:.0f} ms, p95 {react['p95_s'] * 1000:.0f} ms; "
        f"floor median {react['floor_median_s'] * 1000:.0f} ms, p95 {react['floor_p95_s'] * 1000:.0f} ms; "
        f"ratio {react['ratio_median']:.1f}x",
    ]
    foot = r["footprint"]
    lines += [
        "",
        f"Footprint with {foot['bundles']} Bundles / {foot['objects']} objects "
        "(RSS MiB with no Bundles as the baseline -> loaded; KiB per Bundle)",
    ]
    for name, rss in foot["rss_mib"].items():
        empty, per = foot["rss_empty_mib"][name], foot["kib_per_bundle"][name]
        lines.append(f"  {name:<32}{empty:>7.0f} -> {rss:>6.0f}  {per:>7.1f}")
    if large := r.get("footprint_large"):
        base, loaded = large["baseline"], large["loaded"]
        lines += [
            "",
            f"Footprint at scale: fresh services, {base['objects']} objects ({base['bundles']} Bundles) -> "
            f"{loaded['objects']} objects ({loaded['bundles']} Bundles; those added converged in "
            f"{large['converge_seconds']:.0f} s); RSS MiB, KiB per added object, and the peak",
        ]
        for name, rss in loaded["rss_mib"].items():
            per, peak = large["kib_per_object"][name], loaded.get("peak_mib", {}).get(name, 0.0)
            lines.append(
                f"  {name:<32}{base['rss_mib'][name]:>7.0f} -> {rss:>6.0f}  {per:>7.2f}  peak {peak:>6.0f}"
            )
        if again := large.get("restarted"):
            lines += [
                f"Restarted: fresh services over those {again['objects']} objects, every Bundle reconciled "
                f"once and quiet in {again['settle_seconds']:.0f} s; RSS MiB then, and at its peak",
                *(
                    f"  {name:<32}{rss:>7.0f}  peak {again['peak_mib'][name]:>6.0f}"
                    for name, rss in again["rss_mib"].items()
                ),
            ]
    if passes := r.get("passes"):
        lines += [
            "",
            "Status window: Bundles of 5 Sleepers in a chain (a pass each) then a ConfigMap -> Ready, one "
            "after the other and at once;",
            "  fresh services with SMITH_STATUS_WINDOW 0 (a write per pass) and 1 s (the default)",
            f"  {'Bundles':<24}{'window':>8}{'seconds':>10}{'status writes/Bundle':>22}"
            f"{'reconciles/Bundle':>19}",
        ]
        for how in ("alone", "at_once"):
            for window, label in (("0", "0"), ("1", "1 s")):
                row = passes[window][how]
                shape = f"{row['bundles']} {'one by one' if how == 'alone' else 'at once'}"
                lines.append(
                    f"  {shape:<24}{label:>8}{row['seconds']:>10.2f}{row['status_writes_per_bundle']:>22.2f}"
                    f"{row['reconciles_per_bundle']:>19.2f}"
                )
    if ahead := r.get("ahead"):
        title = "Planning ahead: fresh services with SMITH_PLAN_AHEAD 0, then 1 (the default); median of each"
        lines += off_on(title, ahead["0"], ahead["1"])
    if security := r.get("security"):
        title = (
            "Security: fresh services in the insecure development mode, then secure (the default: TLS, "
            "tokens reviewed, writes re-checked); median of each"
        )
        lines += off_on(title, security["off"], security["on"])
    if loops := r.get("loops"):
        base = loops["asyncio"]
        lines += [
            "",
            f"Event loops: {base['seconds'] * base['objects_per_s'] / 10:.0f} Bundles of 10 objects at "
            "once -> all Ready, fresh services on each loop (SMITH_EVENT_LOOP)",
            f"  {'loop':>8}{'seconds':>10}{'objects/s':>11}{'x asyncio':>11}"
            "  CPU s: all of Smith; controller",
        ]
        for name, row in loops.items():
            lines.append(
                f"  {name:>8}{row['seconds']:>10.2f}{row['objects_per_s']:>11.1f}"
                f"{row['objects_per_s'] / base['objects_per_s']:>10.2f}x  {row['smith_cpu_s']:.1f}; "
                + ", ".join(f"{c:.1f}" for c in row["controller_cpu_s"].values())
            )
    if rows := r.get("replicas"):
        one = rows[min(rows)]
        lines += [
            "",
            f"Scale-out: {one['seconds'] * one['objects_per_s'] / 10:.0f} Bundles of 10 objects at once -> "
            "all Ready, fresh services, 1 vs N controller replicas sharing the Bundles",
            f"  {'replicas':>8}{'seconds':>10}{'objects/s':>11}{'x one':>8}"
            "  CPU s: per controller replica; all of Smith; the control plane; RSS MiB per controller",
        ]
        for n, row in rows.items():
            per = ", ".join(f"{c:.1f}" for c in row["controller_cpu_s"].values())
            rss = ", ".join(f"{m:.0f}" for m in row["controller_rss_mib"].values())
            lines.append(
                f"  {n:>8}{row['seconds']:>10.2f}{row['objects_per_s']:>11.1f}"
                f"{row['objects_per_s'] / one['objects_per_s']:>7.2f}x  {per}; {row['smith_cpu_s']:.1f}; "
                + ", ".join(f"{n} {t:.1f}" for n, t in row["plane_cpu_s"].items())
                + f"; {rss}"
            )
    if take := r.get("takeover"):
        lines.append(
            f"  takeover: one of them SIGKILLed and {take['bundles']} Bundles changed at once: its "
            f"{take['dead_share']} Ready {take['dead_share_ready_s']:.1f} s later "
            f"(lease {take['lease_s']:.0f} s)"
        )
    where = r["where_time_goes"]
    lines += [
        "",
        f"Where a reconcile's time goes ({where['reconciles']:.0f} traced reconciles, median "
        f"{where['median reconcile ms']:.1f} ms; share of their time)",
    ]
    for label, value in where.items():
        if label not in ("reconciles", "median reconcile ms"):
            lines.append(f"  {label:<56}{value * 100:>6.1f}%")
    return "\n".join(lines)
