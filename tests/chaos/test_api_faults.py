"""Smith under a slow, lossy, throttling or restarting API server: every Bundle converges, no object is
lost or created twice, no service logs a traceback."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from smith_controller.members import Members

from faults import (
    SCALE,
    Faults,
    Toxiproxy,
    chain,
    converged,
    fault_proxy,
    kubeconfig_via,
    ledger,
    nothing_lost_or_doubled,
    smith,
    smith_beside_proxy,
)
from smith_controlplane.plane import ControlPlane
from smith_engine.model import GROUP
from smith_kube import KubeClient, KubeConfig
from smith_kube.client import MERGE_PATCH
from support import eventually, metric


async def through_toxiproxy(toxiproxy: Toxiproxy, plane: ControlPlane, tmp_path: Path) -> Path:
    listen = await toxiproxy.proxy("apiserver", plane.server.removeprefix("https://"))
    return kubeconfig_via(plane, f"https://{listen}", tmp_path / "kubeconfig")


async def test_a_slow_narrow_link_to_the_api_server(
    kube: KubeClient, plane: ControlPlane, namespace: str, toxiproxy: Toxiproxy, tmp_path: Path
) -> None:
    kubeconfig = await through_toxiproxy(toxiproxy, plane, tmp_path)
    await toxiproxy.toxic("apiserver", "slow", "latency", latency=200, jitter=50)
    await toxiproxy.toxic("apiserver", "slow-up", "latency", stream="upstream", latency=200)
    await toxiproxy.toxic("apiserver", "narrow", "bandwidth", rate=256)  # KB/s
    names = [f"s{i}" for i in range(20 * SCALE)]
    with smith(kubeconfig, tmp_path / "logs"):
        async with ledger(kube, namespace) as book:
            await asyncio.gather(*(kube.create(chain(n, namespace)) for n in names))
            await converged(kube, namespace, names, within=240)
        nothing_lost_or_doubled(book, names)


MODES = pytest.mark.parametrize("all_in_one", [False, True], ids=["microservices", "all-in-one"])


@MODES
async def test_connections_reset_mid_watch_and_mid_apply(
    kube: KubeClient,
    plane: ControlPlane,
    namespace: str,
    toxiproxy: Toxiproxy,
    tmp_path: Path,
    all_in_one: bool,
) -> None:
    kubeconfig = await through_toxiproxy(toxiproxy, plane, tmp_path)
    names = [f"r{i}" for i in range(20 * SCALE)]
    with smith(kubeconfig, tmp_path / "logs", all_in_one=all_in_one):
        async with ledger(kube, namespace) as book:
            await asyncio.gather(*(kube.create(chain(n, namespace, length=5)) for n in names))
            for _ in range(3 * SCALE):  # every connection reset, new ones too, then let through again
                await asyncio.sleep(0.7)
                await toxiproxy.toxic("apiserver", "reset", "reset_peer", timeout=0)
                await asyncio.sleep(0.5)
                await toxiproxy.clear("apiserver", "reset")
            await converged(kube, namespace, names, within=240)
        nothing_lost_or_doubled(book, names, length=5)


@MODES
async def test_429_with_retry_after_and_503_are_waited_out(
    kube: KubeClient, plane: ControlPlane, namespace: str, tmp_path: Path, all_in_one: bool
) -> None:
    # every third request: 429 "come back in a second", then 503 with Retry-After (overloaded), then
    # plain 500s (failures: retried by the controller with back-off), then the API server as it is
    faults = Faults(phases=[(429, "1", 15 * SCALE), (503, "1", 10 * SCALE), (500, None, 10 * SCALE)])
    metrics: dict[str, int] = {}
    names = [f"t{i}" for i in range(20 * SCALE)]
    async with fault_proxy(plane, faults) as server:
        kubeconfig = kubeconfig_via(plane, server, tmp_path / "kubeconfig")
        async with smith_beside_proxy(kubeconfig, tmp_path / "logs", metrics=metrics, all_in_one=all_in_one):
            async with ledger(kube, namespace) as book:
                await asyncio.gather(*(kube.create(chain(n, namespace)) for n in names))
                await converged(kube, namespace, names, within=240)
            nothing_lost_or_doubled(book, names)
            throttled = {
                name: await metric(port, "smith_kube_api_throttled_total") for name, port in metrics.items()
            }
    assert faults.seen == {429: 15 * SCALE, 503: 10 * SCALE, 500: 10 * SCALE}, faults.seen
    # Smith's own client waited each out and sent it again (kopf's watches back off on their own)
    assert 0 < sum(throttled.values()) <= 25 * SCALE, throttled


@MODES
@pytest.mark.parametrize("component", ["kube-apiserver", "etcd"])
async def test_the_api_server_or_etcd_killed_and_restarted_mid_convergence(
    kube: KubeClient, plane: ControlPlane, namespace: str, tmp_path: Path, component: str, all_in_one: bool
) -> None:
    restart = plane.restart_apiserver if component == "kube-apiserver" else plane.restart_etcd
    names = [f"k{i}" for i in range(20 * SCALE)]
    with smith(plane.kubeconfig, tmp_path / "logs", all_in_one=all_in_one):
        async with ledger(kube, namespace) as book:
            await asyncio.gather(*(kube.create(chain(n, namespace, length=5)) for n in names))
            await asyncio.sleep(0.5)
            await asyncio.to_thread(restart, 2.0)
            await converged(kube, namespace, names, within=240)
        nothing_lost_or_doubled(book, names, length=5)


async def test_discovery_without_smiths_group_for_a_moment_loses_no_bundle(
    kube: KubeClient, plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    """An API server just (re)started lists only some API groups for a moment. A controller starting
    then waits until Smith's group is listed (kopf looks once); one running then keeps watching its
    Bundles when a CRD of Smith's group changes meanwhile."""
    faults = Faults(hidden_group=GROUP)
    first, later = [f"d{i}" for i in range(5 * SCALE)], [f"e{i}" for i in range(5 * SCALE)]
    logs = tmp_path / "logs"

    async def waiting() -> bool:
        log = logs / "smith_controller.log"
        return log.exists() and "waiting for the API server to serve Smith's kinds" in log.read_text()

    kubeconfig = tmp_path / "kubeconfig"
    async with (
        fault_proxy(plane, faults) as server,
        smith_beside_proxy(kubeconfig_via(plane, server, kubeconfig), logs),
    ):
        await eventually(waiting, within=60, what="the controller to wait for Smith's group")
        faults.hidden_group = None
        await asyncio.gather(*(kube.create(chain(n, namespace)) for n in first))
        await converged(kube, namespace, first)

        faults.hidden_group = GROUP
        touch = {"metadata": {"labels": {"smith.test/touched": namespace}}}
        crd = ("apiextensions.k8s.io/v1", "CustomResourceDefinition", f"bundles.{GROUP}")
        await kube.patch(*crd, touch, content_type=MERGE_PATCH)
        await asyncio.sleep(2)  # time to look at discovery again, were the controller to
        faults.hidden_group = None
        await asyncio.gather(*(kube.create(chain(n, namespace)) for n in later))
        await converged(kube, namespace, later)


async def test_a_replica_whose_watch_falls_behind_does_not_count_a_live_member_gone(
    kube: KubeClient, plane: ControlPlane, toxiproxy: Toxiproxy, tmp_path: Path
) -> None:
    """Replica `b` hears from the API server late for a while (its process starved, say): its watch
    tells it of `a`'s renewals only after `a`'s lease would have run out. It reads `a`'s lease before
    counting it gone, and `a`, renewing all along, stays a member in `b`'s eyes."""
    duration = 3.0
    seen_by_b: list[frozenset[str]] = []
    config = KubeConfig.load(plane.kubeconfig)
    late = KubeConfig.load(await through_toxiproxy(toxiproxy, plane, tmp_path))
    a = Members(config, namespace="smith-system", identity="lag-a", duration=duration, changed=lambda: None)
    b = Members(
        late,
        namespace="smith-system",
        identity="lag-b",
        duration=duration,
        changed=lambda: seen_by_b.append(b.live()),
    )
    await a.start()
    await b.start()
    try:
        await eventually(lambda: _both(b), within=30, what="b to see a")
        seen_by_b.clear()
        # everything b hears comes 2.5 s late: a's renewals (every second) reach it more than its
        # lease's 3 s apart once, as the delay begins; and b's own requests time out (b drops out itself)
        await toxiproxy.toxic("apiserver", "behind", "latency", latency=2500)
        await asyncio.sleep(3 * duration)
        await toxiproxy.clear("apiserver", "behind")
        await eventually(lambda: _both(b), within=30, what="b to be back")
    finally:
        await b.stop()
        await a.stop()
    assert all("lag-a" in live for live in seen_by_b), seen_by_b


async def _both(members: Members) -> bool:
    return members.live() == {"lag-a", "lag-b"}
