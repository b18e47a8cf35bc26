"""Smith end to end on the real control plane: a Bundle applied like kubectl would converges exactly
as the design says. Each test works in its own namespace."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest

from live import (
    Json,
    bundle,
    condition,
    deployment_object,
    edit_bundle,
    exists,
    finished_trace,
    get_bundle,
    resource_condition,
    until_condition,
    until_resource,
)
from smith_engine.model import API_VERSION, BUNDLE_NAME_LABEL
from smith_kube import KubeClient
from support import config_map, eventually, resource

pytestmark = pytest.mark.controlplane


async def test_chain_is_created_in_dependency_order_and_becomes_ready(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    await kube.create(
        bundle(
            "chain",
            namespace,
            resource("a"),
            resource("b", depends_on=["a"]),
            resource("c", depends_on=["b"]),
        )
    )
    done = await until_condition(kube, namespace, "chain", "Ready")
    made = {n: await kube.get("v1", "ConfigMap", n, namespace) for n in "abc"}
    created = [made[n]["metadata"]["creationTimestamp"] for n in "abc"]
    versions = [int(made[n]["metadata"]["resourceVersion"]) for n in "abc"]
    assert created == sorted(created)
    assert versions == sorted(versions), "each object is created after its dependency"
    assert done["status"]["observedGeneration"] == done["metadata"]["generation"]
    assert [resource_condition(done, n, "Ready")["status"] for n in "abc"] == ["True"] * 3


async def test_kubectl_get_bundles_shows_ready_reason_and_resources_ready(
    kube: KubeClient, namespace: str, smith: Any, control_plane: Any
) -> None:
    await kube.create(bundle("shown", namespace, resource("a"), resource("b", depends_on=["a"])))
    await until_condition(kube, namespace, "shown", "Ready")
    shown = control_plane.kubectl("get", "bdl", "-n", namespace).stdout.split("\n")
    assert shown[0].split() == ["NAME", "READY", "REASON", "RESOURCES", "AGE"]
    assert shown[1].split()[:4] == ["shown", "True", "AllResourcesReady", "2/2"]
    everything = control_plane.kubectl("get", "all", "-n", namespace).stdout
    assert "bundle.smith.atlassian.com/shown" in everything, "Bundles are in the `all` category"


async def test_managed_objects_carry_the_label_and_a_controller_reference(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    await kube.create(bundle("owned", namespace, resource("one")))
    done = await until_condition(kube, namespace, "owned", "Ready")
    meta = (await kube.get("v1", "ConfigMap", "one", namespace))["metadata"]
    assert meta["labels"][BUNDLE_NAME_LABEL] == "owned"
    assert meta["ownerReferences"] == [
        {
            "apiVersion": API_VERSION,
            "kind": "Bundle",
            "name": "owned",
            "uid": done["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


async def test_independent_resources_are_applied_concurrently(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    await kube.create(bundle("wide", namespace, *(resource(f"leaf-{i}") for i in range(8))))
    await until_condition(kube, namespace, "wide", "Ready")
    trace = await finished_trace(smith, namespace, "wide", lambda t: any(s.name == "apply" for s in t))
    applies = [s for s in trace if s.name == "apply"]
    assert len(applies) == 8, "all eight leaves were applied in one reconcile"
    assert max(s.start_time or 0 for s in applies) < min(s.end_time or 0 for s in applies), (
        "the applies overlapped"
    )


async def test_reference_values_are_substituted_with_their_type_and_follow_the_source(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    source = config_map("source", {"host": "db-1.internal"})
    source["metadata"]["labels"] = {"tier": "data"}
    target = config_map("target", {"url": "postgres://!{host}:5432"})
    target["metadata"]["annotations"] = "!{labels}"
    refs = [
        {"name": "host", "resource": "source", "path": "data.host"},
        {"name": "labels", "resource": "source", "path": "{$.metadata.labels}"},
    ]
    await kube.create(
        bundle("refs", namespace, resource("source", source), resource("target", target, references=refs))
    )
    await until_condition(kube, namespace, "refs", "Ready")
    made = await kube.get("v1", "ConfigMap", "target", namespace)
    assert made["data"]["url"] == "postgres://db-1.internal:5432"
    assert made["metadata"]["annotations"] == {"tier": "data", BUNDLE_NAME_LABEL: "refs"}

    await edit_bundle(
        kube,
        namespace,
        "refs",
        lambda s: s["resources"][0]["spec"]["object"]["data"].update(host="db-2.internal"),
    )

    async def followed() -> bool:
        got = await kube.get("v1", "ConfigMap", "target", namespace)
        return bool(got["data"]["url"] == "postgres://db-2.internal:5432")

    await eventually(followed, what="target to follow the new host")


async def test_removed_resource_is_deleted(kube: KubeClient, namespace: str, smith: Any) -> None:
    await kube.create(bundle("shrink", namespace, resource("keep"), resource("drop")))
    await until_condition(kube, namespace, "shrink", "Ready")
    await edit_bundle(kube, namespace, "shrink", lambda s: s["resources"].pop())

    async def dropped() -> bool:
        return not await exists(kube, "v1", "ConfigMap", "drop", namespace)

    await eventually(dropped, what="the removed resource's object to be deleted")
    assert await exists(kube, "v1", "ConfigMap", "keep", namespace)


async def test_updated_resource_updates_the_object_and_hand_edits_are_put_back(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    await kube.create(bundle("edit", namespace, resource("cm", config_map("cm", {"k": "v1"}))))
    await until_condition(kube, namespace, "edit", "Ready")
    await edit_bundle(
        kube, namespace, "edit", lambda s: s["resources"][0]["spec"]["object"]["data"].update(k="v2")
    )

    async def value_is(expected: str) -> bool:
        return bool((await kube.get("v1", "ConfigMap", "cm", namespace))["data"]["k"] == expected)

    await eventually(lambda: value_is("v2"), what="the object to take the Bundle's update")
    await kube.patch("v1", "ConfigMap", "cm", {"data": {"k": "by hand"}}, namespace=namespace)
    await eventually(lambda: value_is("v2"), what="the hand edit to be put back")


async def test_secret_data_is_replaced_not_merged(kube: KubeClient, namespace: str, smith: Any) -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"a": "1"}}
    await kube.create(bundle("secret", namespace, resource("s", secret)))
    await until_condition(kube, namespace, "secret", "Ready")
    extra = base64.b64encode(b"x").decode()
    await kube.patch("v1", "Secret", "s", {"data": {"extra": extra}}, namespace=namespace)

    async def only_ours() -> bool:
        return set((await kube.get("v1", "Secret", "s", namespace))["data"]) == {"a"}

    await eventually(only_ours, what="the Secret's extra key to be removed")


async def test_object_controlled_by_someone_else_is_left_alone(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    await kube.create(
        {**config_map("taken", {"owner": "someone"}), "metadata": {"name": "taken", "namespace": namespace}}
    )
    await kube.create(
        bundle(
            "polite", namespace, resource("taken", config_map("taken", {"owner": "smith"})), resource("free")
        )
    )
    done = await until_condition(kube, namespace, "polite", "Error")
    error = resource_condition(done, "taken", "Error")
    assert (error["status"], error["reason"]) == ("True", "TerminalError")
    assert "has no controller" in error["message"]

    async def free_ready() -> bool:
        return (
            resource_condition(await get_bundle(kube, namespace, "polite"), "free", "Ready").get("status")
            == "True"
        )

    await eventually(free_ready, what="the rest of the bundle to proceed")
    taken = await kube.get("v1", "ConfigMap", "taken", namespace)
    assert taken["data"] == {"owner": "someone"}
    assert BUNDLE_NAME_LABEL not in (taken["metadata"].get("labels") or {})


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ([resource("a", depends_on=["b"]), resource("b", depends_on=["a"])], "dependency cycle: a -> b -> a"),
        (
            [resource("a", depends_on=["ghost"])],
            "resource 'a' depends on 'ghost', which the bundle does not have",
        ),
        ([resource("a"), resource("a", config_map("other"))], "resource name 'a' is used more than once"),
        ([resource("a", config_map("Not_A_Name"))], "metadata.name 'Not_A_Name' is not a valid name"),
    ],
    ids=["cycle", "unknown-dependency", "duplicate", "invalid-object"],
)
async def test_invalid_bundle_gets_an_error_and_creates_nothing(
    kube: KubeClient, namespace: str, smith: Any, resources: list[Json], message: str
) -> None:
    await kube.create(bundle("bad", namespace, *resources))
    done = await until_condition(kube, namespace, "bad", "Error")
    error = condition(done, "Error")
    assert error["reason"] == "TerminalError"  # as Go Smith said it
    assert message in error["message"]
    assert (condition(done, "Ready")["status"], condition(done, "Ready")["reason"]) == (
        "False",
        "InvalidBundle",
    )
    assert (await kube.list("v1", "ConfigMap", namespace, label_selector=BUNDLE_NAME_LABEL))["items"] == []


async def test_a_marker_no_reference_declares_is_an_error_of_its_resource_alone(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    """As Go Smith: `!{nope}` (a whole string) with no reference named `nope` refuses its resource;
    a script's `!{HOME}` inside longer text is literal; the rest of the Bundle goes on."""
    script = "#!/bin/sh\necho !{HOME} {{.Values.name}}"
    good = resource("good", config_map("good", {"run.sh": script}))
    await kube.create(bundle("bad", namespace, resource("a", config_map("a", {"x": "!{nope}"})), good))
    done = await until_condition(kube, namespace, "bad", "Error")
    error = resource_condition(done, "a", "Error")
    assert error["reason"] == "TerminalError"
    assert error["message"] == "marker !{nope} names no declared reference (declared: none)"
    await until_resource(kube, namespace, "bad", "good", "Ready")
    stored = await kube.get("v1", "ConfigMap", "good", namespace)
    assert stored["data"] == {"run.sh": script}, "literal text is stored as written"
    assert not await exists(kube, "v1", "ConfigMap", "a", namespace)


async def test_status_tracks_progress_blocking_and_generation(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    deployment = deployment_object("web", replicas=1, paused=True)
    # A paused Deployment never rolls out (nor does any on the minimal plane, which has no
    # controller-manager), so its dependent waits.
    await kube.create(
        bundle("progress", namespace, resource("web", deployment), resource("after", depends_on=["web"]))
    )
    seen = await until_condition(kube, namespace, "progress", "InProgress")
    assert condition(seen, "Ready")["status"] == "False"

    async def blocked() -> bool:
        got = await get_bundle(kube, namespace, "progress")
        return resource_condition(got, "after", "Blocked").get("reason") == "DependenciesNotReady"

    await eventually(blocked, what="the dependent to be Blocked")
    got = await get_bundle(kube, namespace, "progress")
    assert resource_condition(got, "after", "Blocked")["message"] == "waiting for web to be ready"
    assert not await exists(kube, "v1", "ConfigMap", "after", namespace)
    assert got["status"]["observedGeneration"] == 1

    def drop_the_deployment(spec: Json) -> None:
        spec["resources"] = [resource("after")]

    updated = await edit_bundle(kube, namespace, "progress", drop_the_deployment)
    done = await until_condition(kube, namespace, "progress", "Ready")
    assert done["status"]["observedGeneration"] == updated["metadata"]["generation"] == 2


async def test_status_is_not_rewritten_when_nothing_changed(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    await kube.create(bundle("quiet", namespace, resource("cm", config_map("cm", {"k": "v"}))))
    before = await until_condition(kube, namespace, "quiet", "Ready")
    # A change to a managed object that is not the Bundle's to say (an annotation added by someone
    # else) makes Smith reconcile; the status it computes is the same, so it is not written again.
    reconciles = len(
        [s for s in smith.spans.get_finished_spans() if s.name == f"reconcile {namespace}/quiet"]
    )
    await kube.patch("v1", "ConfigMap", "cm", {"metadata": {"annotations": {"x": "y"}}}, namespace=namespace)

    async def reconciled() -> bool:
        spans = smith.spans.get_finished_spans()
        return len([s for s in spans if s.name == f"reconcile {namespace}/quiet"]) > reconciles

    await eventually(reconciled, what="a reconcile after the annotation")
    after = await get_bundle(kube, namespace, "quiet")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


@pytest.mark.fullplane
async def test_deployment_with_config_and_secret_becomes_available(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds"},
        "stringData": {"token": "t"},
    }
    envs = [{"configMapRef": {"name": "settings"}}, {"secretRef": {"name": "creds"}}]
    deployment = deployment_object("app", replicas=2, env_from=envs)
    await kube.create(
        bundle(
            "rollout",
            namespace,
            resource("settings", config_map("settings", {"MODE": "fast"})),
            resource("creds", secret),
            resource("app", deployment, depends_on=["settings", "creds"]),
        )
    )
    await until_condition(kube, namespace, "rollout", "Ready", within=90)
    status = (await kube.get("apps/v1", "Deployment", "app", namespace))["status"]
    assert status["availableReplicas"] == 2


@pytest.mark.fullplane
async def test_deleting_the_bundle_removes_its_objects(kube: KubeClient, namespace: str, smith: Any) -> None:
    await kube.create(bundle("doomed", namespace, resource("x"), resource("y", depends_on=["x"])))
    await until_condition(kube, namespace, "doomed", "Ready")
    await kube.delete(API_VERSION, "Bundle", "doomed", namespace=namespace)

    async def all_gone() -> bool:
        return not (await kube.list("v1", "ConfigMap", namespace, label_selector=BUNDLE_NAME_LABEL))["items"]

    await eventually(all_gone, within=60, what="the Bundle's objects to be garbage-collected")


async def test_one_reconcile_is_one_trace_across_the_services(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    await kube.create(bundle("traced", namespace, resource("t")))
    await until_condition(kube, namespace, "traced", "Ready")
    trace = await finished_trace(smith, namespace, "traced", lambda t: any(s.name == "apply" for s in t))
    (root,) = [s for s in trace if s.name == f"reconcile {namespace}/traced"]
    by_id = {s.context.span_id: s for s in trace}
    children = {s.name for s in trace if s.parent is not None and s.parent.span_id == root.context.span_id}
    assert {"/smith.v1.Planner/Plan", "/smith.v1.Executor/Apply", "/smith.v1.Status/Report"} <= children
    servers = {
        s.name: by_id[s.parent.span_id].name
        for s in trace
        if s.parent is not None
        and s.parent.span_id in by_id
        and by_id[s.parent.span_id].parent is not None
        and by_id[s.parent.span_id].parent.span_id == root.context.span_id
    }
    assert servers.get("/smith.v1.Planner/Plan") == "/smith.v1.Planner/Plan", (
        "planner server span under its client span"
    )


async def test_a_dead_executor_is_a_retriable_error_and_the_bundle_converges_when_it_returns(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    await smith.kill_executor()
    try:
        await kube.create(bundle("patient", namespace, resource("p1"), resource("p2", depends_on=["p1"])))
        stuck = await until_condition(kube, namespace, "patient", "Error")
        assert condition(stuck, "Error")["reason"] == "RetriableError"
        assert "did not answer" in resource_condition(stuck, "p1", "Error")["message"]
    finally:
        await smith.start_executor()
    await until_condition(kube, namespace, "patient", "Ready")
    names = sorted(
        o["metadata"]["name"]
        for o in (await kube.list("v1", "ConfigMap", namespace))["items"]
        if o["metadata"]["name"].startswith("p")
    )
    assert names == ["p1", "p2"]


async def test_restarting_the_controller_mid_way_loses_and_duplicates_nothing(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    names = [f"step-{i}" for i in range(6)]
    chain = [resource(n, depends_on=[names[i - 1]] if i else []) for i, n in enumerate(names)]
    await kube.create(bundle("restart", namespace, *chain))

    async def started() -> bool:
        return await exists(kube, "v1", "ConfigMap", "step-0", namespace)

    await eventually(started, what="the first object")
    first_uid = (await kube.get("v1", "ConfigMap", "step-0", namespace))["metadata"]["uid"]
    await smith.kill_controller()
    await smith.start_controller()
    await until_condition(kube, namespace, "restart", "Ready")
    made = (await kube.list("v1", "ConfigMap", namespace, label_selector=BUNDLE_NAME_LABEL))["items"]
    assert sorted(o["metadata"]["name"] for o in made) == names
    assert (await kube.get("v1", "ConfigMap", "step-0", namespace))["metadata"]["uid"] == first_uid


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (
            {
                "apiVersion": "settings.k8s.io/v1alpha1",
                "kind": "PodPreset",
                "metadata": {"name": "pp"},
                "spec": {},
            },
            "does not serve PodPreset in settings.k8s.io/v1alpha1",
        ),
        (
            {**deployment_object("old", replicas=1), "apiVersion": "apps/v1beta1"},
            "does not serve Deployment in apps/v1beta1 (versions of group apps it serves: apps/v1)",
        ),
    ],
    ids=["podpreset", "retired-version"],
)
async def test_kind_the_server_does_not_serve_is_a_clear_error_on_that_resource(
    kube: KubeClient, namespace: str, smith: Any, obj: Json, expected: str
) -> None:
    await kube.create(bundle("unserved", namespace, resource("x", obj), resource("fine")))
    done = await until_condition(kube, namespace, "unserved", "Error")
    error = resource_condition(done, "x", "Error")
    assert error["reason"] == "TerminalError"
    assert expected in error["message"]

    async def fine_ready() -> bool:
        got = await get_bundle(kube, namespace, "unserved")
        return resource_condition(got, "fine", "Ready").get("status") == "True"

    await eventually(fine_ready, what="the rest of the bundle to proceed")


async def test_a_controller_limited_to_one_namespace_leaves_the_others_alone(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    other = f"{namespace}-other"
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": other}})
    await smith.kill_controller()
    try:
        await smith.start_controller(watch_namespace=namespace)
        await kube.create(bundle("theirs", other, resource("there")))  # first: it would be done first
        await kube.create(bundle("mine", namespace, resource("here")))
        await until_condition(kube, namespace, "mine", "Ready")
        await asyncio.sleep(1)  # and some more time for it to be (wrongly) picked up
        assert "status" not in await get_bundle(kube, other, "theirs")
        assert not await exists(kube, "v1", "ConfigMap", "there", other)
    finally:
        await smith.kill_controller()
        await smith.start_controller()
    await until_condition(kube, other, "theirs", "Ready")
    await kube.delete("v1", "Namespace", other)


async def test_values_with_any_unicode_are_stored_as_they_are(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    """JSON lets DEL, C1 controls and U+2028 through as they are; the API server reads an apply as YAML,
    which refuses the first and folds the last: what it stores must be exactly the value."""
    data = {"k": "a\x06\x7f\x85\x99 \u2028 \ufeff é \U0009fb9e 🙂"}
    await kube.create(bundle("unicode", namespace, resource("odd", config_map("odd", data))))
    await until_condition(kube, namespace, "unicode", "Ready")
    assert (await kube.get("v1", "ConfigMap", "odd", namespace))["data"] == data
