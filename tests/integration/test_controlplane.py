"""The local control plane is a real one: CRDs with status subresources, optimistic concurrency,
watches, finalizers, garbage collection and Deployments rolling out on kwok nodes."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import pytest

from smith_kube import (
    ConflictError,
    DeadlineError,
    KubeClient,
    NotFoundError,
    TokenBucket,
    UnservedKindError,
    WatchEvent,
)
from smith_kube.client import REQUEST_CONNECTIONS
from smith_kube.informer import run_informer
from support import crd_object, eventually

pytestmark = pytest.mark.controlplane

Json = dict[str, Any]


async def install_crd(kube: KubeClient, definition: Json) -> None:
    with contextlib.suppress(ConflictError):
        await kube.create(definition)

    async def established() -> bool:
        got = await kube.get(
            "apiextensions.k8s.io/v1", "CustomResourceDefinition", definition["metadata"]["name"]
        )
        return any(
            c["type"] == "Established" and c["status"] == "True"
            for c in (got.get("status") or {}).get("conditions") or []
        )

    await eventually(established, what="CRD established")
    spec = definition["spec"]
    api_version = f"{spec['group']}/{spec['versions'][0]['name']}"

    async def discovered() -> bool:  # discovery may lag Established by a moment
        try:
            await kube.resource(api_version, spec["names"]["kind"])
        except UnservedKindError:
            return False
        return True

    await eventually(discovered, what="the CRD's kind in discovery")


def config_map(name: str, namespace: str, **data: str) -> Json:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    }


async def test_custom_resource_status_lives_in_its_own_subresource(kube: KubeClient, namespace: str) -> None:
    await install_crd(kube, crd_object("plane.smith.test", "Sleeper"))
    created = await kube.create(
        {
            "apiVersion": "plane.smith.test/v1",
            "kind": "Sleeper",
            "metadata": {"name": "s", "namespace": namespace},
            "spec": {"sleepFor": 1},
            "status": {"state": "ignored on create"},
        }
    )
    assert "status" not in created
    with_status = await kube.patch(
        "plane.smith.test/v1",
        "Sleeper",
        "s",
        {"status": {"state": "Awake"}},
        namespace=namespace,
        subresource="status",
    )
    assert with_status["status"] == {"state": "Awake"}
    assert with_status["metadata"]["generation"] == created["metadata"]["generation"]
    spec_change = await kube.patch(
        "plane.smith.test/v1",
        "Sleeper",
        "s",
        {"spec": {"sleepFor": 2}, "status": {"state": "x"}},
        namespace=namespace,
    )
    assert spec_change["status"] == {"state": "Awake"}
    assert spec_change["metadata"]["generation"] == created["metadata"]["generation"] + 1


async def test_update_with_a_stale_resource_version_is_a_conflict(kube: KubeClient, namespace: str) -> None:
    first = await kube.create(config_map("cm", namespace, a="1"))
    await kube.replace({**first, "data": {"a": "2"}})
    with pytest.raises(ConflictError) as caught:
        await kube.replace({**first, "data": {"a": "3"}})
    assert caught.value.status == 409
    assert (await kube.get("v1", "ConfigMap", "cm", namespace))["data"] == {"a": "2"}


async def collect(events: AsyncIterator[WatchEvent], into: list[tuple[str, str]], name: str) -> None:
    """The watch events about ConfigMap `name` (a full plane also publishes kube-root-ca.crt into every
    namespace), as (type, its value of `v`)."""
    async for event in events:
        if event.type != "BOOKMARK" and event.object["metadata"]["name"] == name:
            into.append((event.type, event.object["data"]["v"] if event.object.get("data") else ""))


async def test_watch_sees_added_modified_deleted(kube: KubeClient, namespace: str) -> None:
    listed = await kube.list("v1", "ConfigMap", namespace)
    seen: list[tuple[str, str]] = []
    watcher = asyncio.create_task(
        collect(
            kube.watch("v1", "ConfigMap", namespace, resource_version=listed["metadata"]["resourceVersion"]),
            seen,
            "w",
        )
    )
    try:
        await kube.create(config_map("w", namespace, v="1"))
        await kube.patch("v1", "ConfigMap", "w", {"data": {"v": "2"}}, namespace=namespace)
        await kube.delete("v1", "ConfigMap", "w", namespace=namespace)

        async def all_seen() -> bool:
            return [t for t, _ in seen if t] == ["ADDED", "MODIFIED", "DELETED"]

        await eventually(all_seen, what="three watch events")
        assert seen == [("ADDED", "1"), ("MODIFIED", "2"), ("DELETED", "2")]
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def test_requests_go_through_while_more_watches_are_open_than_requests_have_connections(
    kube: KubeClient, namespace: str
) -> None:
    """HTTP/1.1 holds a connection for each watch: the client's requests must not wait behind them."""
    await kube.create(config_map("held", namespace, v="1"))
    count = REQUEST_CONNECTIONS + 6
    async with KubeClient(kube.config, timeout=5) as client:
        started = [asyncio.Event() for _ in range(count)]

        async def hold(event: asyncio.Event) -> None:
            selector = "metadata.name=held"
            async for _ in client.watch("v1", "ConfigMap", namespace, field_selector=selector):
                event.set()  # the first event of a watch without a version: the object as it is

        holders = [asyncio.create_task(hold(e)) for e in started]
        try:
            async with asyncio.timeout(60):
                await asyncio.gather(*(e.wait() for e in started))
            for _ in range(3):  # each within the client's 5 s, with every watch still open
                assert (await client.get("v1", "ConfigMap", "held", namespace))["data"] == {"v": "1"}
            assert not any(h.done() for h in holders)
        finally:
            for holder in holders:
                holder.cancel()
            await asyncio.gather(*holders, return_exceptions=True)


def config_maps_informed(
    kube: KubeClient, namespace: str, listed: asyncio.Event, **handlers: Any
) -> asyncio.Task[None]:
    """An informer of the namespace's ConfigMaps, running; `listed` is set once it has listed."""
    return asyncio.create_task(
        run_informer(kube, "v1", "ConfigMap", synced=listed, namespace=namespace, **handlers)
    )


async def test_an_informer_keeps_nothing_of_its_listing_while_it_watches(
    kube: KubeClient, namespace: str
) -> None:
    """A watch lasts as long as the process: the list before it must not stay in memory with it."""
    await asyncio.gather(*(kube.create(config_map(f"m{i}", namespace, v="x" * 1000)) for i in range(500)))
    listed, seen = asyncio.Event(), []
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        informer = config_maps_informed(
            kube, namespace, listed, on_list=lambda items: seen.append(len(items)), on_event=lambda _: None
        )
        await listed.wait()
        await kube.create(config_map("after", namespace, v="1"))  # the watch is under way once it sees one
        await asyncio.sleep(1)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        informer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await informer
    assert seen == [500]
    assert held < 750_000, f"{held} bytes held while watching (the listing parsed is about 1,800,000)"


async def test_a_handler_failing_on_one_object_does_not_stop_the_watch(
    kube: KubeClient, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An object built to make a handler fail (a tenant's, however hostile) costs only its own event."""
    listed, seen = asyncio.Event(), list[str]()

    def handle(event: WatchEvent) -> None:
        name = event.object["metadata"]["name"]
        if name == "poison":
            raise RecursionError("maximum recursion depth exceeded")
        seen.append(name)

    informer = config_maps_informed(kube, namespace, listed, on_list=lambda _: None, on_event=handle)
    try:
        await listed.wait()
        await kube.create(config_map("poison", namespace, v="1"))
        await kube.create(config_map("after", namespace, v="1"))
        await eventually(lambda: asyncio.sleep(0, "after" in seen), what="the event after the failing one")
    finally:
        informer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await informer
    assert f"v1 ConfigMap {namespace}/poison: its ADDED event was not handled (RecursionError)" in caplog.text


async def test_object_with_a_finalizer_waits_until_it_is_removed(kube: KubeClient, namespace: str) -> None:
    cm = config_map("f", namespace)
    cm["metadata"]["finalizers"] = ["smith.test/hold"]
    await kube.create(cm)
    await kube.delete("v1", "ConfigMap", "f", namespace=namespace)
    held = await kube.get("v1", "ConfigMap", "f", namespace)
    assert held["metadata"]["deletionTimestamp"]
    await kube.patch("v1", "ConfigMap", "f", {"metadata": {"finalizers": None}}, namespace=namespace)
    with pytest.raises(NotFoundError):
        await kube.get("v1", "ConfigMap", "f", namespace)


async def test_discovery_names_the_versions_a_group_serves(kube: KubeClient) -> None:
    with pytest.raises(UnservedKindError) as caught:
        await kube.resource("apps/v1beta1", "Deployment")
    assert caught.value.served == ("apps/v1",)
    assert "apps/v1" in str(caught.value)


async def test_owner_deletion_garbage_collects_dependents(kube: KubeClient, namespace: str) -> None:
    owner = await kube.create(config_map("owner", namespace))
    dependent = config_map("dependent", namespace)
    dependent["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    ]
    await kube.create(dependent)
    await kube.delete("v1", "ConfigMap", "owner", namespace=namespace)

    async def collected() -> bool:
        try:
            await kube.get("v1", "ConfigMap", "dependent", namespace)
        except NotFoundError:
            return True
        return False

    await eventually(collected, within=60, what="dependent garbage-collected")


@pytest.mark.fullplane
async def test_deployment_becomes_available_on_kwok_nodes(kube: KubeClient, namespace: str) -> None:
    labels = {"app": "web"}
    await kube.create(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "web", "image": "registry.example.com/web:1"}]},
                },
            },
        }
    )

    async def available() -> bool:
        status = (await kube.get("apps/v1", "Deployment", "web", namespace)).get("status", {})
        return bool(status.get("availableReplicas") == 3)

    await eventually(available, within=90, what="Deployment available")
    pods = await kube.list("v1", "Pod", namespace)
    assert {p["spec"]["nodeName"].startswith("kwok-node-") for p in pods["items"]} == {True}


async def test_a_write_that_cannot_be_sent_before_its_deadline_is_not_sent(
    kube: KubeClient, namespace: str
) -> None:
    """A write bounded by a deadline (an executor's fence) that waits past it — here for its turn under a
    rate limit of one request every 2 s — is not sent; one sent in time carries the time left to the API
    server (`timeout`), which takes it."""
    async with KubeClient(kube.config, rate=TokenBucket(qps=0.5, burst=1)) as limited:
        await limited.resource("v1", "ConfigMap")  # discovery takes the one token there is
        deadline = time.monotonic() + 3
        first, second = await asyncio.gather(
            limited.create(config_map("in-time", namespace), deadline=deadline),
            limited.create(config_map("too-late", namespace), deadline=deadline),
            return_exceptions=True,
        )
    assert not isinstance(first, BaseException), first
    assert isinstance(second, DeadlineError), second
    assert (await kube.get("v1", "ConfigMap", "in-time", namespace))["metadata"]["name"] == "in-time"
    with pytest.raises(NotFoundError):
        await kube.get("v1", "ConfigMap", "too-late", namespace)


async def test_a_paged_informer_holds_a_page_at_a_time_and_misses_nothing(
    kube: KubeClient, namespace: str
) -> None:
    """The controller's cache lists its kinds page by page (a restarted controller with 50,000 objects
    must not parse them all at once): every object comes once, in order of pages, and the watch goes
    on from the list's version."""

    def labelled(name: str, value: str) -> Json:
        made = config_map(name, namespace, v=value)
        made["metadata"]["labels"] = {"smith.test/paged": "yes"}
        return made

    await asyncio.gather(*(kube.create(labelled(f"p{i}", "x" * 1000)) for i in range(500)))
    pages: list[tuple[int, bool, bool]] = []
    named: list[str] = []

    async def listing_peak(**handlers: Any) -> tuple[int, asyncio.Task[None]]:
        """The most memory held while the informer lists (beyond what was held before)."""
        listed = asyncio.Event()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            task = config_maps_informed(
                kube,
                namespace,
                listed,
                on_event=lambda e: named.append(e.object["metadata"]["name"]),
                label_selector="smith.test/paged",
                **handlers,
            )
            await listed.wait()
            return tracemalloc.get_traced_memory()[1] - before, task
        finally:
            tracemalloc.stop()

    def page(items: list[Any], first: bool, last: bool) -> None:
        pages.append((len(items), first, last))

    paged, paging = await listing_peak(on_page=page, page=50)
    for _ in range(2):  # a peak counts whatever else the process did meanwhile: the least of three
        again, extra = await listing_peak(on_page=lambda *_: None, page=50)
        extra.cancel()
        await asyncio.gather(extra, return_exceptions=True)
        paged = min(paged, again)
    whole, listing = await listing_peak(on_list=lambda items: None)
    try:
        assert pages == [(50, i == 0, i == 9) for i in range(10)]
        assert paged < whole / 3, (paged, whole)
        await kube.create(labelled("after", "1"))
        await eventually(lambda: _true(named.count("after") == 2), what="both informers to see it")
    finally:
        for task in (paging, listing):
            task.cancel()
        await asyncio.gather(paging, listing, return_exceptions=True)


async def _true(value: bool) -> bool:
    return value
