"""Controller replicas sharing the Bundles, each a process of its own beside the test system's services:
every Bundle reconciled by exactly one live replica; a killed replica's Bundles taken over within its
lease; a paused replica, resumed, writes nothing stale. Executor replicas behind one Service share one
registration."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from smith_controller.cache import BundleState
from smith_controller.manager import Controller
from smith_controller.members import Members
from smith_executor import registration

from live import bundle, edit_bundle, exists, get_bundle
from smith_controlplane.plane import dying_with_parent, free_ports
from smith_engine.model import API_VERSION, BUNDLE_NAME_LABEL, Bundle, GroupKind, ObjectRef
from smith_engine.planner import Apply, Delete
from smith_engine.sharding import owner
from smith_kube import GoneError, KubeClient, KubeConfig, NotFoundError
from support import config_map, eventually, metric, resource

pytestmark = pytest.mark.controlplane

LEASE = 5.0  # seconds: short, so that a takeover is quick to see
EXECUTORS_NAMESPACE = "smith-system"


class Replicas:
    """Controller processes against the test system's planner, status service and executors."""

    def __init__(
        self, smith: Any, kubeconfig: Path, logs: Path, names: list[str], namespace: str, all_in_one: bool
    ) -> None:
        """`all_in_one`: each replica a whole `smith_all`, its executors registered in `namespace` (apart
        from the test system's, which stay in smith-system)."""
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.metrics = dict(zip(names, free_ports(len(names)), strict=True))
        logs.mkdir(parents=True, exist_ok=True)
        for name in names:
            env = {
                **os.environ,
                "KUBECONFIG": str(kubeconfig),
                # the test's namespace only: the session's other tests leave Bundles behind
                "SMITH_WATCH_NAMESPACE": namespace,
                "SMITH_CONTROLLER_ID": name,
                "SMITH_LEASE_SECONDS": str(LEASE),
                "SMITH_RESYNC_SECONDS": "0",  # what converges, converges by events
                "SMITH_METRICS": f"127.0.0.1:{self.metrics[name]}",
            }
            if all_in_one:
                env["SMITH_NAMESPACE"] = namespace
            else:
                env |= {
                    "SMITH_PLANNER": f"127.0.0.1:{smith.planner_port}",
                    "SMITH_STATUS": f"127.0.0.1:{smith.status_port}",
                    "SMITH_NAMESPACE": EXECUTORS_NAMESPACE,
                    **smith.trust.env("smith_controller"),
                }
            module = "smith_all" if all_in_one else "smith_controller"
            with (logs / f"{name}.log").open("wb") as out:
                command = dying_with_parent([sys.executable, "-m", module])
                self.processes[name] = subprocess.Popen(
                    command, env=env, stdout=out, stderr=subprocess.STDOUT
                )

    def stop(self) -> None:
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGCONT)
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    async def metric(self, name: str, metric_name: str) -> float:
        return await metric(self.metrics[name], metric_name)

    async def kept(self, expected: dict[str, int]) -> bool:
        """Each named replica keeps exactly that many objects in memory."""
        kept = {n: await self.metric(n, "smith_controller_cached_objects") for n in expected}
        return kept == expected

    async def all_see(self, members: int) -> None:
        async def seen() -> bool:
            try:
                return all(
                    [await self.metric(n, "smith_controller_members") == members for n in self.processes]
                )
            except aiohttp.ClientError:  # not serving yet
                return False

        await eventually(seen, within=60, what=f"every replica to see {members} members")


@contextlib.asynccontextmanager
async def three(
    smith: Any, kubeconfig: Path, logs: Path, namespace: str, prefix: str, *, all_in_one: bool = False
) -> AsyncIterator[tuple[Replicas, list[str]]]:
    """Three replicas `<prefix>-a`, `-b`, `-c`, each seeing all three before the test goes on."""
    names = [f"{prefix}-{x}" for x in "abc"]
    with replicas(smith, kubeconfig, logs, names, namespace, all_in_one=all_in_one) as running:
        await running.all_see(3)
        yield running, names


def share(namespace: str, bundles: list[str], names: list[str], member: str) -> list[str]:
    """The Bundles `member` owns among `names`."""
    return [b for b in bundles if owner(f"{namespace}/{b}", names) == member]


@contextlib.contextmanager
def replicas(
    smith: Any, kubeconfig: Path, logs: Path, names: list[str], namespace: str, *, all_in_one: bool = False
) -> Iterator[Replicas]:
    running = Replicas(smith, kubeconfig, logs, names, namespace, all_in_one)
    try:
        yield running
    finally:
        running.stop()


def chain(name: str, namespace: str, value: str, length: int = 2) -> dict[str, Any]:
    steps = [
        resource(
            f"{name}-{i}",
            config_map(f"{name}-{i}", {"v": value}),
            depends_on=[f"{name}-{i - 1}"] if i else [],
        )
        for i in range(length)
    ]
    return bundle(name, namespace, *steps)


async def all_ready(kube: KubeClient, namespace: str, names: list[str], generation: int = 1) -> bool:
    listing = (await kube.list("smith.atlassian.com/v1", "Bundle", namespace))["items"]
    done = {
        b["metadata"]["name"]
        for b in listing
        if (b.get("status") or {}).get("observedGeneration") == generation
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in (b.get("status") or {}).get("conditions", [])
        )
    }
    return done >= set(names)


async def reporters(kube: KubeClient, namespace: str) -> dict[str, set[str]]:
    """The controller replicas whose reconciles each Bundle's Events come from."""
    by_bundle: dict[str, set[str]] = defaultdict(set)
    for event in (await kube.list("v1", "Event", namespace))["items"]:
        by_bundle[event["involvedObject"]["name"]].add(event.get("reportingInstance", ""))
    return by_bundle


@contextlib.asynccontextmanager
async def history(kube: KubeClient, namespace: str) -> AsyncIterator[dict[str, list[str]]]:
    """Every value each ConfigMap of `namespace` held, in order, as the API server told a watch."""
    seen: dict[str, list[str]] = defaultdict(list)
    listing = await kube.list("v1", "ConfigMap", namespace)

    async def follow(version: str) -> None:
        while True:
            with contextlib.suppress(GoneError):
                async for event in kube.watch("v1", "ConfigMap", namespace, resource_version=version):
                    if event.type in ("ADDED", "MODIFIED"):
                        obj = event.object
                        values = seen[obj["metadata"]["name"]]
                        value = (obj.get("data") or {}).get("v", "")
                        if not values or values[-1] != value:
                            values.append(value)
                    version = event.object["metadata"].get("resourceVersion", version)

    task = asyncio.create_task(follow(str(listing["metadata"]["resourceVersion"])))
    try:
        yield seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_three_replicas_share_the_bundles_each_reconciled_by_exactly_one(
    kube: KubeClient, namespace: str, smith_without_controller: Any, kubeconfig: Path, tmp_path: Path
) -> None:
    async with three(smith_without_controller, kubeconfig, tmp_path, namespace, "ha") as (running, names):
        bundles = [f"b{i}" for i in range(300)]
        await asyncio.gather(*(kube.create(chain(b, namespace, "v1")) for b in bundles))
        await eventually(lambda: all_ready(kube, namespace, bundles), within=240, what="300 Bundles Ready")

        async def told() -> bool:  # Events are posted in the background
            return set(await reporters(kube, namespace)) >= set(bundles)

        await eventually(told, within=60, what="every Bundle's Events")
        by_bundle = await reporters(kube, namespace)
        for b in bundles:
            assert by_bundle[b] == {owner(f"{namespace}/{b}", names)}, b
        owned = [await running.metric(n, "smith_bundles_owned") for n in names]
        assert all(n > 0 for n in owned), owned
        assert sum(owned) == len(bundles)
        made = await kube.list("v1", "ConfigMap", namespace, label_selector=BUNDLE_NAME_LABEL)
        assert len(made["items"]) == 2 * len(bundles)
        # Each replica keeps in memory the objects of its own share only.
        await eventually(
            lambda: running.kept({n: 2 * len(share(namespace, bundles, names, n)) for n in names}),
            what="each replica to keep its share's objects",
        )


@pytest.mark.parametrize("mode", ["microservices", "all-in-one"])
async def test_a_killed_replicas_bundles_are_taken_over_within_its_lease(
    kube: KubeClient,
    namespace: str,
    smith_without_controller: Any,
    kubeconfig: Path,
    tmp_path: Path,
    mode: str,
) -> None:
    system, all_in_one = smith_without_controller, mode == "all-in-one"
    async with three(system, kubeconfig, tmp_path, namespace, "hk", all_in_one=all_in_one) as (
        running,
        names,
    ):
        bundles = [f"k{i}" for i in range(60)]
        victims = share(namespace, bundles, names, "hk-a")
        await asyncio.gather(*(kube.create(chain(b, namespace, "v1", length=4)) for b in bundles))

        async def started() -> bool:
            made = await kube.list("v1", "ConfigMap", namespace, label_selector=BUNDLE_NAME_LABEL)
            return any(
                o["metadata"]["name"].startswith(tuple(f"{v}-" for v in victims)) for o in made["items"]
            )

        await eventually(started, what="the doomed replica's first object")
        running.processes["hk-a"].kill()  # SIGKILL: its lease stays until it runs out
        killed = time.monotonic()
        await eventually(
            lambda: all_ready(kube, namespace, bundles), within=LEASE + 60, what="every Bundle Ready"
        )
        print(
            f"takeover: every Bundle Ready {time.monotonic() - killed:.1f} s after the kill (lease {LEASE} s)"
        )
        made = (await kube.list("v1", "ConfigMap", namespace, label_selector=BUNDLE_NAME_LABEL))["items"]
        assert sorted(o["metadata"]["name"] for o in made) == sorted(
            f"{b}-{i}" for b in bundles for i in range(4)
        )
        by_bundle = await reporters(kube, namespace)
        assert any("hk-b" in by_bundle[v] or "hk-c" in by_bundle[v] for v in victims)
        # The survivors listed again what they took over, and keep it.
        left = ["hk-b", "hk-c"]
        await eventually(
            lambda: running.kept({n: 4 * len(share(namespace, bundles, left, n)) for n in left}),
            what="the survivors to keep the objects of their new shares",
        )


async def test_a_paused_replica_resumed_writes_nothing_stale(
    kube: KubeClient, namespace: str, smith_without_controller: Any, kubeconfig: Path, tmp_path: Path
) -> None:
    async with three(smith_without_controller, kubeconfig, tmp_path, namespace, "hp") as (running, names):
        bundles = [f"p{i}" for i in range(90)]
        mine = share(namespace, bundles, names, "hp-a")
        async with history(kube, namespace) as seen:
            await asyncio.gather(*(kube.create(chain(b, namespace, "v1", length=3)) for b in bundles))

            async def busy() -> bool:  # pause it in the middle of its work
                return any(f"{b}-0" in seen for b in mine)

            await eventually(busy, what="the replica to be at work")
            paused = running.processes["hp-a"]
            paused.send_signal(signal.SIGSTOP)
            try:

                def to_v2(spec: dict[str, Any]) -> None:
                    for r in spec["resources"]:
                        r["spec"]["object"]["data"]["v"] = "v2"

                for b in bundles:
                    await edit_bundle(kube, namespace, b, to_v2)
                await eventually(
                    lambda: all_ready(kube, namespace, bundles, generation=2),
                    within=LEASE + 90,
                    what="every Bundle at v2 without the paused replica",
                )
            finally:
                paused.send_signal(signal.SIGCONT)
            await running.all_see(3)  # it is back among the members
            await asyncio.sleep(LEASE)  # and has had time to act on whatever it held
            stale = {
                name: values for name, values in seen.items() if "v1" in values[values.index("v2") + 1 :]
            }
            assert not stale, f"v1 written back after v2: {stale}"
        for b in mine:
            status = (await get_bundle(kube, namespace, b))["status"]
            assert status["observedGeneration"] == 2, b
        values = {
            o["metadata"]["name"]: o["data"]["v"]
            for o in (await kube.list("v1", "ConfigMap", namespace))["items"]
            if "data" in o and "v" in o["data"]
        }
        assert set(values.values()) == {"v2"}


def to_value(value: str) -> Any:
    def edit(spec: dict[str, Any]) -> None:
        for r in spec["resources"]:
            r["spec"]["object"]["data"]["v"] = value

    return edit


async def test_a_replica_back_after_its_lease_ran_out_acts_only_on_the_bundles_as_they_are_now(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    """A replica paused past its lease comes back holding the Bundles as they were, and its watches tell
    it what it missed only as they catch up. Here the test system's controller is made to hold an earlier
    generation of a Bundle (as such a watch leaves it), and its lease to run out: back, it lists the
    Bundles again before acting, and the watch's late word of the earlier generation is not acted on."""
    key, name = (namespace, "back"), "back"
    await kube.create(chain(name, namespace, "v1", length=1))
    await eventually(lambda: all_ready(kube, namespace, [name]), what="the Bundle at v1")
    earlier = await get_bundle(kube, namespace, name)
    await edit_bundle(kube, namespace, name, to_value("v2"))
    await eventually(lambda: all_ready(kube, namespace, [name], generation=2), what="the Bundle at v2")

    before: list[int] = []  # the membership it was in

    async def held_back(controller: Controller) -> None:
        members = controller.members
        assert members is not None
        before.append(members.epoch)
        # its watch has not told it of v2 yet
        controller.bundles[key] = BundleState(json.dumps(earlier).encode())
        members._renewed_at = time.monotonic() - 2 * members.duration  # paused past its lease
        await members._renew()  # resumed: it renews and is back

    async def acting(controller: Controller) -> bool:
        return controller.owns(key)

    async def earlier_reconciles_may_act(controller: Controller) -> bool:
        assert controller.members is not None
        return controller.members.left(*key, epoch=before[0]) > 0

    async def trigger(controller: Controller) -> None:
        controller.scheduler.trigger(key)

    async def idle(controller: Controller) -> bool:
        return not controller.scheduler.pending(key)

    async def reconciled() -> None:
        await smith.in_controller(trigger)
        await eventually(lambda: smith.in_controller(idle), what="its reconcile to end")

    async def told_late(controller: Controller) -> None:
        controller.bundle_event("MODIFIED", earlier)

    async with history(kube, namespace) as seen:
        await smith.in_controller(held_back)
        await eventually(lambda: smith.in_controller(acting), within=60, what="the replica to act again")
        assert not await smith.in_controller(earlier_reconciles_may_act)  # what they read is stale
        await reconciled()
        await smith.in_controller(told_late)
        await reconciled()
        stored = await kube.get("v1", "ConfigMap", f"{name}-0", namespace)
    assert "v1" not in seen.get(f"{name}-0", []), seen
    assert stored["data"] == {"v": "v2"}
    assert (await get_bundle(kube, namespace, name))["status"]["observedGeneration"] == 2


async def test_a_replica_back_within_its_wait_after_joining_is_told_of_its_new_membership(
    kubeconfig: Path, namespace: str
) -> None:
    """A replica paused right after it joined, before its wait after joining ended, comes back with the
    same members and still waiting: only its membership is new. It must be told all the same, or it acts
    in the new membership on the Bundles as it held them (CI once saw the stale v1 of the test above,
    when no watch event of its own lease happened to come in between). Only its renewals run here: no
    watch or timer counts the members in between."""
    told: list[tuple[int, bool]] = []  # its membership and whether it came back, as each call saw them
    members = Members(
        KubeConfig.load(kubeconfig),
        namespace=namespace,
        identity="back-soon",
        duration=60.0,  # its wait after joining (a third) lasts far longer than this test
        changed=lambda: told.append((members.epoch, members.rejoined)),
    )
    try:
        await members._renew()  # joins
        assert told == [(1, False)]
        members._renewed_at = time.monotonic() - 2 * members.duration  # paused past its lease
        await members._renew()  # resumed: it renews and is back
        assert told == [(1, False), (2, True)]
        await members._renew()  # renewed in the same membership: nothing new
        assert len(told) == 2
    finally:
        await members.stop()


def endpoint_slice(service: str, ready: dict[str, bool]) -> dict[str, Any]:
    endpoints = [
        {
            "addresses": [f"10.0.0.{i + 1}"],
            "conditions": {"ready": up},
            "targetRef": {"kind": "Pod", "name": pod, "namespace": EXECUTORS_NAMESPACE},
        }
        for i, (pod, up) in enumerate(ready.items())
    ]
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{service}-x",
            "namespace": EXECUTORS_NAMESPACE,
            "labels": {"kubernetes.io/service-name": service},
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "grpc", "port": 7410, "protocol": "TCP"}],
    }


async def test_replicas_behind_one_service_keep_their_shared_registration_until_the_last_goes(
    kube: KubeClient, smith: Any
) -> None:
    service, name = "smith-probe", "probe"
    kinds = [GroupKind("probe.example.com", "Nothing")]
    await registration.publish(kube, name=name, endpoint=f"dns:///{service}:7410", kinds=kinds)
    try:
        await kube.create(endpoint_slice(service, {"pod-a": True, "pod-b": True}))
        # pod-a stops while pod-b serves: the registration stays
        assert not await registration.withdraw(kube, name=name, service=service, pod="pod-a")
        assert await exists(kube, API_VERSION, "Executor", name, EXECUTORS_NAMESPACE)
        # pod-b stops last (pod-a no longer ready): it goes
        await kube.apply(endpoint_slice(service, {"pod-a": False, "pod-b": True}), field_manager="test")
        assert await registration.withdraw(kube, name=name, service=service, pod="pod-b")
        assert not await exists(kube, API_VERSION, "Executor", name, EXECUTORS_NAMESPACE)
    finally:
        with contextlib.suppress(NotFoundError):
            await kube.delete(
                "discovery.k8s.io/v1", "EndpointSlice", f"{service}-x", namespace=EXECUTORS_NAMESPACE
            )
        with contextlib.suppress(NotFoundError):
            await kube.delete(API_VERSION, "Executor", name, namespace=EXECUTORS_NAMESPACE)


async def test_an_executor_writes_nothing_once_the_callers_deadline_has_passed(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    """A controller replica's deadline is its fence: what an executor gets to only after it ended (a
    create that found the object there, queued behind other work) must write nothing, or a replica
    that lost its share would write over its successor."""
    executor = smith.executors[0]
    name = "late"
    # a Bundle that exists: the garbage collector deletes what an absent owner controls
    uid = (await kube.create(bundle(name, namespace)))["metadata"]["uid"]
    owner_ref = {"apiVersion": API_VERSION, "kind": "Bundle", "name": name, "uid": uid, "controller": True}
    ours = {
        **config_map(name, {"v": "new"}),
        "metadata": {"name": name, "namespace": namespace, "ownerReferences": [owner_ref]},
    }
    await kube.create(ours)
    stale = {**ours, "data": {"v": "stale"}}
    owner = Bundle(namespace=namespace, name=name, uid=uid)
    past = time.monotonic() - 1
    create, _ = await executor._apply(owner, Apply(resource=name, object=stale, expect_absent=True), past)
    update, _ = await executor._apply(owner, Apply(resource=name, object=stale, observed_version="1"), past)
    gone = await executor._delete(owner, Delete(ObjectRef.of(ours)), executor.family.kinds(), past)
    for result in (create, update, gone):
        assert not result.ok
        assert "deadline passed" in result.error
        assert not result.terminal  # the caller (if it still may) asks again
    assert (await kube.get("v1", "ConfigMap", name, namespace))["data"] == {"v": "new"}
