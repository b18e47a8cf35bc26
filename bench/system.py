"""Smith as a whole, against a local control plane, every service its own process: how fast it
converges compared with a plain client doing the same job, how that grows with the number of
Bundles, what it costs when idle, how fast it reacts, its memory, and where a reconcile's time goes.

Every figure stands next to a baseline measured in the same run; nothing here is asserted."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.footprint import Footprint
from bench.idle import Idle
from bench.latency import Latency
from bench.peers import Kro, running_kro
from bench.reaction import Reaction
from bench.shapes import (
    CHAINS_AT_ONCE,
    CONCURRENCY,
    PASSES_ALONE,
    PASSES_AT_ONCE,
    REFERENCE_CHAIN,
    ROOT,
    SLEEPERS,
    bundle_copy_crd,
    layered,
)
from bench.throughput import Throughput
from bench.traces import traced_share
from smith_controlplane.objects import crd_object
from smith_controlplane.plane import ControlPlane
from smith_controlplane.services import running_services
from smith_engine.readiness import READY_WHEN_PATH, READY_WHEN_VALUE
from smith_kube import KubeClient, KubeConfig
from smith_kube.manifests import create_all, create_objects


class Bench(Latency, Throughput, Idle, Reaction, Footprint):
    """Every phase of the benchmark against one set of Smith's services."""


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
