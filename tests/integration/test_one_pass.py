"""One pass: within one reconcile, a wave whose objects the API server answers READY (holding what the
next wave reads) lets the next wave go at once; the first wave that needs time ends the pass, and its
watch event brings the next one. Against the real control plane, with every service running."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from smith_executor.servicer import ExecutorServicer, RegistryFamily
from smith_wire.convert import action_to_proto, wave_to_proto

from live import bundle, deployment_object, finished_trace, resource_condition, until_condition
from smith.v1.common_pb2 import OUTCOME_CREATED, ActionResult, BundleRef
from smith.v1.executor_pb2 import ApplyRequest
from smith_engine.ahead import plan_ahead
from smith_engine.deletion import FINALIZER
from smith_engine.model import Bundle
from smith_engine.planner import Apply, owner_reference, plan_bundle
from smith_engine.readiness import BUILTIN
from smith_engine.validation import load_bundle
from smith_kube import ConflictError, KubeClient, NotFoundError
from support import bundle_object, config_map, eventually, resource

pytestmark = pytest.mark.controlplane


def link(name: str, before: str) -> dict[str, Any]:
    """ConfigMap `name` holding the value of the one before it (a reference), after it."""
    ref = {"name": "v", "resource": before, "path": "data.value"}
    return resource(name, config_map(name, {"value": "!{v}"}), depends_on=[before], references=[ref])


def applies(spans: list[Any]) -> list[str]:
    """The resources whose objects the trace created or updated (an apply that found its object in sync
    changes nothing: a Deployment its controller annotated is checked again, by dry run)."""
    return [
        str((s.attributes or {}).get("smith.resource"))
        for s in spans
        if s.name == "apply" and (s.attributes or {}).get("smith.verdict") in ("Created", "Updated")
    ]


async def test_a_chain_ready_as_it_is_made_converges_in_one_reconcile(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    chain = [
        resource("c0", config_map("c0", {"value": "seed"})),
        *(link(f"c{i}", f"c{i - 1}") for i in range(1, 5)),
    ]
    await kube.create(bundle("chain", namespace, *chain))
    done = await until_condition(kube, namespace, "chain", "Ready")

    spans = await finished_trace(smith, namespace, "chain", lambda s: len(applies(s)) == 5)
    assert applies(spans) == ["c0", "c1", "c2", "c3", "c4"], "every wave in the first reconcile, in order"
    (root,) = [s for s in spans if s.name.startswith("reconcile ")]
    assert (root.attributes or {}).get("smith.waves") == 5
    reports = [s for s in spans if s.name.endswith("/Report") and s.kind.name == "CLIENT"]
    assert len(reports) == 1, "the status is written once for the pass"
    plans = [s for s in spans if s.name.endswith("/Plan") and s.kind.name == "CLIENT"]
    calls = [s for s in spans if s.name.endswith("/Apply") and s.kind.name == "CLIENT"]
    assert (len(plans), len(calls)) == (1, 1), (
        "c1-c4 planned ahead and applied in c0's call; c4 answered as predicted: the plan after it too"
    )

    stored = {f"c{i}": await kube.get("v1", "ConfigMap", f"c{i}", namespace) for i in range(5)}
    assert stored["c4"]["data"] == {"value": "seed"}, "each wave read what the one before it holds"
    assert done["status"]["readyResources"] == "5/5"
    assert all(resource_condition(done, f"c{i}", "Ready")["status"] == "True" for i in range(5))
    told = {r["name"]: r["object"]["uid"] for r in done["status"]["resourceStatuses"]}
    assert told == {n: o["metadata"]["uid"] for n, o in stored.items()}, "the real uids, not placeholders"


async def test_a_chain_not_answered_as_predicted_is_planned_again_from_the_answers_and_converges(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    """c0 says `annotations: {}` (as templates often do), which the API server does not keep: the waves
    planned ahead of it do not go, the planner plans again from its real answer, and every value and
    owner is as it would have been."""
    c0 = config_map("c0", {"value": "seed"})
    c0["metadata"]["annotations"] = {}
    await kube.create(bundle("odd", namespace, resource("c0", c0), link("c1", "c0"), link("c2", "c1")))
    done = await until_condition(kube, namespace, "odd", "Ready")
    assert done["status"]["readyResources"] == "3/3"

    spans = await finished_trace(smith, namespace, "odd", lambda s: len(applies(s)) == 3)
    assert applies(spans) == ["c0", "c1", "c2"]
    plans = [s for s in spans if s.name.endswith("/Plan") and s.kind.name == "CLIENT"]
    assert len(plans) == 2, "c0's answer not as predicted: planned again, c1 with c2 ahead, as predicted"
    stored = {n: await kube.get("v1", "ConfigMap", n, namespace) for n in ("c0", "c1", "c2")}
    assert stored["c2"]["data"] == {"value": "seed"}
    for name, before in (("c1", "c0"), ("c2", "c1")):
        owners = [o["uid"] for o in stored[name]["metadata"]["ownerReferences"] if not o.get("controller")]
        assert owners == [stored[before]["metadata"]["uid"]], name


async def test_a_wave_that_needs_time_ends_the_pass_and_its_watch_event_brings_the_next(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    """The Deployment is not Available when it is made: what depends on it waits, in a later reconcile,
    for the Deployment's own event (its rollout said done here, as a controller-manager would)."""
    await kube.create(
        bundle(
            "rollout",
            namespace,
            resource("settings"),
            resource("web", deployment_object("web", replicas=2), depends_on=["settings"]),
            resource("after", depends_on=["web"]),
        )
    )

    first = await finished_trace(smith, namespace, "rollout", lambda s: "web" in applies(s))
    assert applies(first) == ["settings", "web"], "settings went on at once, and the pass stopped at web"

    replicas = dict.fromkeys(("replicas", "updatedReplicas", "readyReplicas", "availableReplicas"), 2)
    status = {"status": {"observedGeneration": 1, **replicas}}
    await kube.patch("apps/v1", "Deployment", "web", status, namespace=namespace, subresource="status")
    await until_condition(kube, namespace, "rollout", "Ready")
    later = await finished_trace(smith, namespace, "rollout", lambda s: "after" in applies(s))
    assert applies(later) == ["after"]
    assert later[0].context.trace_id != first[0].context.trace_id


Before = Callable[[KubeClient], Awaitable[None]]


async def test_a_passs_own_writes_coming_back_bring_no_other_pass_and_a_change_by_someone_else_does(
    kube: KubeClient, namespace: str, smith_without_resync: Any
) -> None:
    """Every object the pass made comes back as a watch event with the version its apply's answer showed
    the pass: no news. A change to one of them by anyone else brings a pass, which puts it back."""
    # a controller just started learns its executors for a moment, and each routing change is a pass
    await kube.create(bundle("first", namespace, resource("w", config_map("w", {"value": "w"}))))
    await until_condition(kube, namespace, "first", "Ready")
    chain = [resource("c0", config_map("c0", {"value": "seed"})), link("c1", "c0"), link("c2", "c1")]
    await kube.create(bundle("quiet", namespace, *chain))
    await until_condition(kube, namespace, "quiet", "Ready")
    smith = smith_without_resync
    await finished_trace(smith, namespace, "quiet", lambda s: len(applies(s)) == 3)

    def passes() -> int:
        name = f"reconcile {namespace}/quiet"
        return sum(s.name == name for s in smith.spans.get_finished_spans())

    await asyncio.sleep(2)  # the three watch events came within milliseconds; a pass they caused, too
    assert passes() == 1, "the objects' own events brought no pass"

    await kube.patch("v1", "ConfigMap", "c2", {"data": {"value": "changed"}}, namespace=namespace)

    async def put_back() -> bool:
        return bool((await kube.get("v1", "ConfigMap", "c2", namespace))["data"] == {"value": "seed"})

    await eventually(put_back, what="c2 put back by the pass its change brought")
    assert passes() >= 2


def finalizer_write(monkeypatch: pytest.MonkeyPatch, smith: Any, namespace: str, before: Before) -> None:
    """Run `before` (in the controller's loop) ahead of each write of the controller's on a Bundle of
    `namespace` other than its status: the finalizer's."""
    kube = smith.controller.kube
    patch = kube.patch

    async def held(api_version: str, kind: str, name: str, body: Any, **options: Any) -> Any:
        if kind == "Bundle" and options.get("namespace") == namespace and not options.get("subresource"):
            await before(kube)
        return await patch(api_version, kind, name, body, **options)

    monkeypatch.setattr(kube, "patch", held)


async def test_a_new_bundles_first_pass_does_not_wait_for_its_finalizer(
    kube: KubeClient, namespace: str, smith: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The finalizer's write (as costly as a status write) goes on beside the first waves: held back
    until the Bundle's first object exists, the Bundle still converges in that one pass, finalizer set."""
    order: list[str] = []

    async def until_c0_exists(controller_kube: KubeClient) -> None:
        for _ in range(100):
            with contextlib.suppress(NotFoundError):
                await controller_kube.get("v1", "ConfigMap", "c0", namespace)
                order.append("c0 made, then the finalizer written")
                return
            await asyncio.sleep(0.1)
        order.append("the finalizer written first")  # the pass waited for it: c0 never came

    finalizer_write(monkeypatch, smith, namespace, until_c0_exists)
    chain = [resource("c0", config_map("c0", {"value": "seed"})), link("c1", "c0")]
    await kube.create(bundle("eager", namespace, *chain))
    done = await until_condition(kube, namespace, "eager", "Ready")

    assert order == ["c0 made, then the finalizer written"]
    assert FINALIZER in done["metadata"]["finalizers"]
    spans = await finished_trace(smith, namespace, "eager", lambda s: len(applies(s)) == 2)
    assert applies(spans) == ["c0", "c1"], "both waves in the first pass"
    reports = [s for s in spans if s.name.endswith("/Report") and s.kind.name == "CLIENT"]
    assert len(reports) == 1, "its report written over the version the finalizer made: once"


async def test_a_first_pass_whose_finalizer_write_fails_is_told_by_the_next(
    kube: KubeClient, namespace: str, smith: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Bundle changed under the finalizer's write (a conflict): that pass ends unreported, the next
    writes the finalizer and tells what the first made (its Created Events are not lost)."""
    refused: list[str] = []

    async def refuse_once(_: KubeClient) -> None:
        if not refused:
            refused.append("refused")
            raise ConflictError(409, {"reason": "Conflict", "message": "the object has been modified"})

    finalizer_write(monkeypatch, smith, namespace, refuse_once)
    await kube.create(bundle("late", namespace, resource("c0", config_map("c0", {"value": "seed"}))))
    done = await until_condition(kube, namespace, "late", "Ready")

    assert refused == ["refused"]
    assert FINALIZER in done["metadata"]["finalizers"]
    stored = await kube.get("v1", "ConfigMap", "c0", namespace)
    assert stored["data"] == {"value": "seed"}

    async def created_told() -> bool:
        events = (await kube.list("v1", "Event", namespace))["items"]
        return [e["reason"] for e in events].count("Created") == 1

    await eventually(created_told, what="one Created Event for c0, made by the pass that was not reported")


class Recording(KubeClient):
    """A real client that notes each request's method and path."""

    def __init__(self, kube: KubeClient) -> None:
        super().__init__(kube.config)
        self.sent: list[tuple[str, str]] = []

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        self.sent.append((method, path))
        return await super().request(method, path, **kwargs)


async def test_a_create_is_one_request_and_never_takes_over_an_object_that_is_not_smiths(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    # a Bundle that exists (the executor acts for no other) and that Smith leaves alone (a cycle)
    cycle = bundle("b", namespace, resource("x", depends_on=["y"]), resource("y", depends_on=["x"]))
    uid = (await kube.create(cycle))["metadata"]["uid"]
    async with Recording(kube) as recording:
        executor = ExecutorServicer(recording, RegistryFamily(BUILTIN))
        owner = BundleRef(namespace=namespace, name="b", uid=uid)

        async def create(name: str) -> ActionResult:
            obj = config_map(name, {"value": "from the Bundle"})
            obj["metadata"] |= {
                "namespace": namespace,
                "ownerReferences": [owner_reference(Bundle(namespace=namespace, name="b", uid=uid))],
            }
            action = action_to_proto(Apply(name, obj, expect_absent=True))
            recording.sent.clear()
            answer = await executor.Apply(ApplyRequest(bundle=owner, actions=[action]), NoDeadline())  # type: ignore[arg-type]
            (result,) = answer.results
            return result

        made = await create("fresh")
        path = f"/api/v1/namespaces/{namespace}/configmaps/fresh"
        assert made.ok
        assert made.outcome == OUTCOME_CREATED
        assert [p for p in recording.sent if "configmaps" in p[1]] == [("PATCH", path)]
        assert (await kube.get("v1", "ConfigMap", "fresh", namespace))["data"] == {"value": "from the Bundle"}

        theirs = config_map("theirs", {"value": "someone else's"})
        theirs["metadata"]["namespace"] = namespace
        await kube.create(theirs)
        refused = await create("theirs")
        assert not refused.ok
        assert refused.terminal
        assert "theirs" in refused.error_message
        stored = await kube.get("v1", "ConfigMap", "theirs", namespace)
        assert stored["data"] == {"value": "someone else's"}, "an object that is not Smith's is left as it is"
        assert "smith" not in {m["manager"] for m in stored["metadata"]["managedFields"]}


def planned_ahead(namespace: str, uid: str, *resources: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """The first wave of Bundle "ahead" (uid `uid`) with `resources` in `namespace`, and the waves the
    planner plans ahead of it, as the planner sends them."""
    obj = bundle_object(*resources, name="ahead")
    obj["metadata"] |= {"namespace": namespace, "uid": uid}
    b = load_bundle(obj)
    plan = plan_bundle(b, [])
    waves = plan_ahead(plan.actions, [], lambda seen: plan_bundle(b, seen)).waves
    return [action_to_proto(a) for a in plan.actions], [wave_to_proto(w) for w in waves]


async def test_waves_planned_ahead_go_in_the_same_call_only_while_the_answers_are_as_predicted(
    kube: KubeClient, namespace: str
) -> None:
    # The objects belong to a Bundle that exists (the garbage collector deletes what a missing owner
    # owned) and that Smith leaves alone: its two resources depend on each other.
    cycle = bundle("ahead", namespace, resource("x", depends_on=["y"]), resource("y", depends_on=["x"]))
    uid = (await kube.create(cycle))["metadata"]["uid"]
    executor = ExecutorServicer(kube, RegistryFamily(BUILTIN))
    owner = BundleRef(namespace=namespace, name="ahead", uid=uid)
    first, then = planned_ahead(
        namespace,
        uid,
        resource("c0", config_map("c0", {"value": "seed"})),
        link("c1", "c0"),
        link("c2", "c1"),
    )
    assert len(then) == 2
    answer = await executor.Apply(ApplyRequest(bundle=owner, actions=first, then=then), NoDeadline())  # type: ignore[arg-type]
    assert [(r.resource_name, r.ok, r.outcome) for r in answer.results] == [
        (f"c{i}", True, OUTCOME_CREATED) for i in range(3)
    ]
    c1, c2 = [await kube.get("v1", "ConfigMap", n, namespace) for n in ("c1", "c2")]
    assert c2["data"] == {"value": "seed"}, "the value went along the predictions"
    owners = [o["uid"] for o in c2["metadata"]["ownerReferences"] if not o.get("controller")]
    assert owners == [c1["metadata"]["uid"]], "the placeholder uid was filled in from c1's answer"

    # d0 says `annotations: {}`, which the API server does not keep: its answer is not as predicted
    d0 = config_map("d0", {"value": "seed"})
    d0["metadata"]["annotations"] = {}
    first, then = planned_ahead(namespace, uid, resource("d0", d0), link("d1", "d0"))
    assert len(then) == 1
    answer = await executor.Apply(ApplyRequest(bundle=owner, actions=first, then=then), NoDeadline())  # type: ignore[arg-type]
    assert [(r.resource_name, r.ok) for r in answer.results] == [("d0", True)], "d1 was not applied"
    with pytest.raises(NotFoundError):
        await kube.get("v1", "ConfigMap", "d1", namespace)


class NoDeadline:
    """The one thing the executor asks of a call's context here: no deadline."""

    def time_remaining(self) -> None:
        return None
