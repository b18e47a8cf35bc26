"""Deletion as Smith v2 has it, on the real control plane: Smith's finalizer and an ordered teardown of a
deleted Bundle, `--cascade=orphan`, objects removed from a Bundle deleted only once the rest is READY
(dependents first), soft delete with `status.objectsToDelete`, and the ownerReferences every object
holds to what it depends on."""

from __future__ import annotations

from typing import Any

import pytest

from live import Json, bundle, deployment_object, edit_bundle, exists, get_bundle, until_condition
from smith_engine.deletion import DELETION_DELAY, FINALIZER
from smith_engine.model import API_VERSION
from smith_engine.times import parse_rfc3339
from smith_kube import KubeClient, NotFoundError
from support import config_map, eventually, resource

pytestmark = pytest.mark.controlplane


def chain(*names: str) -> list[Json]:
    """ConfigMaps each depending on the one before."""
    return [resource(n, depends_on=[names[i - 1]] if i else []) for i, n in enumerate(names)]


async def gone(kube: KubeClient, namespace: str, name: str, *, within: float = 30) -> None:
    async def absent() -> bool:
        return not await exists(kube, API_VERSION, "Bundle", name, namespace)

    await eventually(absent, within=within, what=f"Bundle {name} to be gone")


def deletions(smith: Any, namespace: str, bundle_name: str) -> list[str]:
    """The objects Smith deleted for the Bundle, in the order the deletions started."""
    spans = [
        s
        for s in smith.spans.get_finished_spans()
        if s.name == "delete" and s.attributes.get("smith.bundle") == f"{namespace}/{bundle_name}"
    ]
    return [str(s.attributes["smith.object"]) for s in sorted(spans, key=lambda s: s.start_time or 0)]


async def test_objects_hold_owner_references_to_what_they_depend_on(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    await kube.create(bundle("deps", namespace, *chain("db", "app")))
    done = await until_condition(kube, namespace, "deps", "Ready")
    assert done["metadata"]["finalizers"] == [FINALIZER]
    db = await kube.get("v1", "ConfigMap", "db", namespace)
    refs = (await kube.get("v1", "ConfigMap", "app", namespace))["metadata"]["ownerReferences"]
    to_db = {"apiVersion": "v1", "kind": "ConfigMap", "name": "db", "uid": db["metadata"]["uid"]}
    assert {**to_db, "blockOwnerDeletion": True} in refs
    assert [r["kind"] for r in refs if r.get("controller")] == ["Bundle"]


@pytest.mark.parametrize("written_by", ["smith", "smith-go"])
async def test_a_deleted_bundle_is_torn_down_dependents_first(
    kube: KubeClient, namespace: str, smith: Any, written_by: str
) -> None:
    body = bundle("stack", namespace, *chain("base", "middle", "top"), resource("side"))
    if written_by == "smith-go":  # Smith's Go controller wrote the finalizer: it must go cleanly too
        body["metadata"]["finalizers"] = [FINALIZER]
    await kube.create(body)
    await until_condition(kube, namespace, "stack", "Ready")
    await kube.delete(API_VERSION, "Bundle", "stack", namespace=namespace)
    await gone(kube, namespace, "stack")
    for name in ("base", "middle", "top", "side"):
        assert not await exists(kube, "v1", "ConfigMap", name, namespace)
    order = deletions(smith, namespace, "stack")  # a delete may be sent twice (the second finds it gone)
    assert sorted(set(order)) == ["base", "middle", "side", "top"]
    assert order.index("top") < order.index("middle") < order.index("base")


async def test_a_bundle_with_a_kind_smith_cannot_manage_is_deleted_all_the_same(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    template = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"}, "template": {}}
    await kube.create(bundle("odd", namespace, resource("cm"), resource("t", template)))
    await until_condition(kube, namespace, "odd", "Error")
    await kube.delete(API_VERSION, "Bundle", "odd", namespace=namespace)
    await gone(kube, namespace, "odd")
    assert not await exists(kube, "v1", "ConfigMap", "cm", namespace)


async def test_a_bundle_deleted_while_smith_is_down_goes_once_it_is_back(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    await kube.create(bundle("later", namespace, *chain("x", "y")))
    await until_condition(kube, namespace, "later", "Ready")
    await smith.kill_controller()
    try:
        await kube.delete(API_VERSION, "Bundle", "later", namespace=namespace)
        stuck = await get_bundle(kube, namespace, "later")
        assert stuck["metadata"]["deletionTimestamp"], "the finalizer holds it"
        assert await exists(kube, "v1", "ConfigMap", "y", namespace)
    finally:
        await smith.start_controller()
    await gone(kube, namespace, "later")
    assert not await exists(kube, "v1", "ConfigMap", "x", namespace)


async def test_cascade_orphan_keeps_the_objects(kube: KubeClient, namespace: str, smith: Any) -> None:
    await kube.create(bundle("kept", namespace, *chain("k1", "k2")))
    await until_condition(kube, namespace, "kept", "Ready")
    await kube.delete(API_VERSION, "Bundle", "kept", namespace=namespace, propagation="Orphan")
    await gone(kube, namespace, "kept", within=60)
    k2 = await kube.get("v1", "ConfigMap", "k2", namespace)
    assert [r["kind"] for r in k2["metadata"].get("ownerReferences") or []] == ["ConfigMap"]
    assert await exists(kube, "v1", "ConfigMap", "k1", namespace)


async def test_removed_objects_wait_for_the_rest_to_be_ready_then_go_dependents_first(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    await kube.create(bundle("trim", namespace, resource("keep"), *chain("old-base", "old-top")))
    await until_condition(kube, namespace, "trim", "Ready")

    def swap(spec: Json) -> None:  # drop both old ones; add one blocked on a reference not there yet
        blocked = config_map("new", {"v": "!{missing}"})
        ref = {"name": "missing", "resource": "keep", "path": "data.notYet"}
        spec["resources"] = [spec["resources"][0], resource("new", blocked, references=[ref])]

    await edit_bundle(kube, namespace, "trim", swap)

    async def listed() -> bool:
        status = (await get_bundle(kube, namespace, "trim")).get("status", {})
        return [o["name"] for o in status.get("objectsToDelete", [])] == ["old-base", "old-top"]

    await eventually(listed, what="the removed objects in status.objectsToDelete")
    assert await exists(kube, "v1", "ConfigMap", "old-top", namespace), "not deleted while in progress"

    await edit_bundle(kube, namespace, "trim", lambda s: s["resources"].__setitem__(1, resource("new")))
    await until_condition(kube, namespace, "trim", "Ready")

    async def deleted() -> bool:
        return not await exists(kube, "v1", "ConfigMap", "old-base", namespace)

    await eventually(deleted, what="the removed objects to be deleted")
    assert deletions(smith, namespace, "trim") == ["old-top", "old-base"]


HOLD = "test.smith.atlassian.com/hold"  # a finalizer of the test's: Pods stay until it lets them go


@pytest.mark.fullplane
async def test_a_removed_deployments_pods_are_gone_before_the_config_map_it_read(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    """Deleted in the foreground, as Go Smith deletes: the Deployment stays (being deleted) until the
    garbage collector has deleted its ReplicaSet and Pods, so the ConfigMap its Pods read goes after them."""
    web = deployment_object("web", replicas=2, env_from=[{"configMapRef": {"name": "settings"}}])
    web["spec"]["template"]["metadata"]["finalizers"] = [HOLD]
    settings = config_map("settings", {"LOG_LEVEL": "info"})
    await kube.create(
        bundle(
            "app",
            namespace,
            resource("keep"),
            resource("settings", settings),
            resource("web", web, depends_on=["settings"]),
        )
    )
    await until_condition(kube, namespace, "app", "Ready", within=60)
    await edit_bundle(
        kube, namespace, "app", lambda spec: spec.__setitem__("resources", spec["resources"][:1])
    )

    async def pods() -> list[Json]:
        return list((await kube.list("v1", "Pod", namespace, label_selector="app=web"))["items"])

    async def pods_going() -> bool:
        going = [p for p in await pods() if p["metadata"].get("deletionTimestamp")]
        return len(going) == 2

    await eventually(pods_going, within=60, what="the Deployment's Pods to be deleted")
    deployment = await kube.get("apps/v1", "Deployment", "web", namespace)
    assert deployment["metadata"]["deletionTimestamp"]
    assert "foregroundDeletion" in deployment["metadata"]["finalizers"], "kept until its Pods are gone"
    assert await exists(kube, "v1", "ConfigMap", "settings", namespace), "still read by Pods that are there"

    for pod in await pods():
        await kube.patch(
            "v1", "Pod", pod["metadata"]["name"], {"metadata": {"finalizers": None}}, namespace=namespace
        )

    async def settings_gone() -> bool:
        return not await exists(kube, "v1", "ConfigMap", "settings", namespace)

    await eventually(settings_gone, within=60, what="the ConfigMap to be deleted once the Pods are gone")
    assert not await exists(kube, "apps/v1", "Deployment", "web", namespace)
    assert await pods() == []
    assert deletions(smith, namespace, "app")[:2] == ["web", "settings"]


async def test_an_invalid_bundle_deletes_nothing(kube: KubeClient, namespace: str, smith: Any) -> None:
    await kube.create(bundle("careful", namespace, resource("a"), resource("b")))
    await until_condition(kube, namespace, "careful", "Ready")
    await edit_bundle(
        kube, namespace, "careful", lambda s: s.update(resources=[resource("a", depends_on=["nothere"])])
    )
    await until_condition(kube, namespace, "careful", "Error")
    assert await exists(kube, "v1", "ConfigMap", "b", namespace)
    assert deletions(smith, namespace, "careful") == []


def soft(name: str, delay: str) -> Json:
    cm = config_map(name, {"k": "v"})
    cm["metadata"]["annotations"] = {DELETION_DELAY: delay}
    return resource(name, cm)


async def test_a_soft_deleted_object_is_kept_for_its_delay_then_deleted(
    kube: KubeClient, namespace: str, smith_without_resync: Any
) -> None:
    """With no resync, only the due time the plan named brings the deletion."""
    await kube.create(bundle("soft", namespace, resource("stay"), soft("cache", "3s")))
    await until_condition(kube, namespace, "soft", "Ready")
    await edit_bundle(kube, namespace, "soft", lambda s: s.update(resources=s["resources"][:1]))

    async def pending() -> bool:
        status = (await get_bundle(kube, namespace, "soft")).get("status", {})
        return bool(status.get("objectsToDelete"))

    await eventually(pending, what="the pending deletion in the status")
    (entry,) = (await get_bundle(kube, namespace, "soft"))["status"]["objectsToDelete"]
    cache = await kube.get("v1", "ConfigMap", "cache", namespace)
    assert entry["name"] == "cache"
    assert entry["uid"] == cache["metadata"]["uid"]
    assert parse_rfc3339(entry["deletionDue"]) is not None

    async def deleted() -> bool:
        return not await exists(kube, "v1", "ConfigMap", "cache", namespace)

    await eventually(deleted, within=15, what="the deletion once due")
    with pytest.raises(NotFoundError):
        await kube.get("v1", "ConfigMap", "cache", namespace)

    async def cleared() -> bool:
        return "objectsToDelete" not in (await get_bundle(kube, namespace, "soft")).get("status", {})

    await eventually(cleared, what="objectsToDelete to be emptied")


async def test_putting_a_soft_deleted_resource_back_cancels_its_deletion(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    await kube.create(bundle("undo", namespace, soft("session", "1h")))
    await until_condition(kube, namespace, "undo", "Ready")
    uid = (await kube.get("v1", "ConfigMap", "session", namespace))["metadata"]["uid"]
    original = (await get_bundle(kube, namespace, "undo"))["spec"]["resources"]
    await edit_bundle(kube, namespace, "undo", lambda s: s.update(resources=[resource("other")]))

    async def pending() -> bool:
        status = (await get_bundle(kube, namespace, "undo")).get("status", {})
        return [o["name"] for o in status.get("objectsToDelete", [])] == ["session"]

    await eventually(pending, what="the pending deletion in the status")
    await edit_bundle(kube, namespace, "undo", lambda s: s.update(resources=original))
    await until_condition(kube, namespace, "undo", "Ready")

    async def cancelled() -> bool:
        status = (await get_bundle(kube, namespace, "undo")).get("status", {})
        return not status.get("objectsToDelete")  # "other", removed in turn, had no delay: deleted

    await eventually(cancelled, what="no deletion to be pending")
    assert not await exists(kube, "v1", "ConfigMap", "other", namespace)
    assert (await kube.get("v1", "ConfigMap", "session", namespace))["metadata"]["uid"] == uid
