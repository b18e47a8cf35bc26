"""Convergence on the real control plane with the manifests platform teams apply: values the server
rewrites into its normal form converge, a converged Bundle costs no writes, removed fields disappear,
fields of other managers stay, hand edits are put back, and an update cycle is reported instead of
fought. Resyncs (every RESYNC_SECONDS here) and watches on blocking objects heal without an edit."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from prometheus_client import REGISTRY

from live import RESYNC_SECONDS, Json, bundle, edit_bundle, get_bundle, resource_condition, until_condition
from smith_engine.model import API_VERSION, BUNDLE_NAME_LABEL
from smith_engine.times import rfc3339
from smith_kube import KubeClient
from smith_kube.client import MERGE_PATCH
from support import config_map, eventually, resource

pytestmark = pytest.mark.controlplane

KINDS = (("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "Service"), ("apps/v1", "Deployment"))


def web_app(name: str) -> list[Json]:
    """What a team ships: config, a Secret written with stringData, a Deployment with requests and
    limits the server rewrites (`cpu: "0.5"` is stored as `500m`, `1024Mi` as `1Gi`), probes on a named
    port, and a Service whose targetPort is that name (int-or-string)."""
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"{name}-creds"}}
    secret["stringData"] = {"DB_PASSWORD": "hunter2"}
    container = {
        "name": "web",
        "image": "registry.example.com/web:1.4.2",
        "ports": [{"name": "http", "containerPort": 8080}],
        "envFrom": [{"configMapRef": {"name": f"{name}-config"}}, {"secretRef": {"name": f"{name}-creds"}}],
        "resources": {
            "requests": {"cpu": "0.5", "memory": "1024Mi"},
            "limits": {"cpu": 1, "memory": "2Gi"},
        },
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": 8080}, "initialDelaySeconds": 10},
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}},
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": "http"}]},
    }
    return [
        resource("config", config_map(f"{name}-config", {"LOG_LEVEL": "info", "WORKERS": "4"})),
        resource("creds", secret),
        resource("web", deployment, depends_on=["config", "creds"]),
        resource("service", service, depends_on=["web"]),
    ]


async def versions(kube: KubeClient, namespace: str) -> dict[str, str]:
    """resourceVersion of every object of the usual kinds in `namespace`, by kind/name."""
    found = {}
    for api_version, kind in KINDS:
        for item in (await kube.list(api_version, kind, namespace))["items"]:
            found[f"{kind}/{item['metadata']['name']}"] = item["metadata"]["resourceVersion"]
    return found


def reconcile_traces(smith: Any, namespace: str, name: str, *, since: int = 0) -> set[int]:
    """The finished reconciles of the Bundle that started after `since` (time.time_ns()): one that was
    in flight when a test saw the Bundle's status (written inside it) is not one that came after."""
    spans = smith.spans.get_finished_spans()
    root = f"reconcile {namespace}/{name}"
    return {s.context.trace_id for s in spans if s.name == root and (s.start_time or 0) > since}


def spans_in(smith: Any, traces: set[int], name: str) -> list[Any]:
    return [s for s in smith.spans.get_finished_spans() if s.name == name and s.context.trace_id in traces]


async def quiet_for_resyncs(
    kube: KubeClient, smith: Any, namespace: str, name: str, *, count: int = 3
) -> None:
    """Over `count` resyncs of a converged Bundle: not one pass (nothing it reads changed since it
    converged, and the controller knows it without a call to any service), and nothing written: no
    object, not the Bundle's status."""
    await eventually(partial(settled, smith, namespace, name), what=f"{name} settled")
    objects, before = await versions(kube, namespace), await get_bundle(kube, namespace, name)
    since, resyncs, skipped = (
        time.time_ns(),
        metric("smith_resyncs_total"),
        metric("smith_passes_skipped_total"),
    )

    async def resynced() -> bool:
        return metric("smith_resyncs_total") >= resyncs + count

    await eventually(resynced, within=RESYNC_SECONDS * (count + 3), what=f"{count} resyncs")
    assert reconcile_traces(smith, namespace, name, since=since) == set(), "a resync passed it again"
    assert metric("smith_passes_skipped_total") >= skipped + count, "each resync skipped it"
    assert await versions(kube, namespace) == objects, "no object was written"
    after = await get_bundle(kube, namespace, name)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"], "nor the status"


async def resyncs_write_nothing(
    kube: KubeClient, smith: Any, namespace: str, name: str, *, count: int = 2
) -> None:
    """Wait for `count` more passes of a Bundle still in progress (resyncs: nothing else happens; its
    verdicts may change with time alone) and check they wrote nothing: no object, not the Bundle's status,
    and no apply or dry run sent at all."""
    began = time.time_ns()  # first one whole pass that began now: what one in flight wrote is "before"
    await eventually(
        lambda: passed(smith, namespace, name, began, 1), within=RESYNC_SECONDS * 4, what="a pass"
    )
    objects, before = await versions(kube, namespace), await get_bundle(kube, namespace, name)
    since = time.time_ns()
    await eventually(
        lambda: passed(smith, namespace, name, since, count),
        within=RESYNC_SECONDS * (count + 3),
        what="resyncs",
    )
    new = reconcile_traces(smith, namespace, name, since=since)
    assert spans_in(smith, new, "apply") == [], "no apply is sent, not even a dry run"
    assert await versions(kube, namespace) == objects, "no object was written"
    after = await get_bundle(kube, namespace, name)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"], "nor the status"


async def passed(smith: Any, namespace: str, name: str, since: int, count: int) -> bool:
    return len(reconcile_traces(smith, namespace, name, since=since)) >= count


async def settled(smith: Any, namespace: str, name: str) -> bool:
    """The controller knows the Bundle converged and that nothing it reads changed since."""
    state = smith.controller.bundles.get((namespace, name))
    return state is not None and state.unchanged_since_settled()


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


@pytest.mark.fullplane
async def test_values_the_server_rewrites_converge_and_a_converged_bundle_writes_nothing(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    await kube.create(bundle("web", namespace, *web_app("web")))
    done = await until_condition(kube, namespace, "web", "Ready", within=90)
    assert [
        resource_condition(done, n, "Ready")["status"] for n in ("config", "creds", "web", "service")
    ] == ["True"] * 4
    stored = await kube.get("apps/v1", "Deployment", "web", namespace)
    container = stored["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"] == {"cpu": "500m", "memory": "1Gi"}, "the server's normal form"
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "2Gi"}
    creds = await kube.get("v1", "Secret", "web-creds", namespace)
    assert creds["data"] == {"DB_PASSWORD": base64.b64encode(b"hunter2").decode()}
    await quiet_for_resyncs(kube, smith, namespace, "web")


async def test_a_converged_bundle_writes_nothing_after_the_executor_forgot(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    """An executor that restarts knows nothing: the next pass (here brought by another tool labelling
    one of the objects) checks each object with one dry run, which tells it that all is in sync; nothing
    is written, and from then on nothing is sent at all."""
    await kube.create(
        bundle("calm", namespace, *web_app("calm")[:2], resource("after", depends_on=["creds"]))
    )
    await until_condition(kube, namespace, "calm", "Ready")
    await eventually(partial(settled, smith, namespace, "calm"), what="calm settled")
    smith.forget_applied()
    since = time.time_ns()
    label = {"metadata": {"labels": {"cost-center": "42"}}}
    await kube.patch("v1", "ConfigMap", "calm-config", label, namespace=namespace, content_type=MERGE_PATCH)
    objects = await versions(kube, namespace)

    async def checked_again() -> bool:
        new = reconcile_traces(smith, namespace, "calm", since=since)
        return len(spans_in(smith, new, "apply")) >= 3

    await eventually(checked_again, within=RESYNC_SECONDS * 4, what="the objects to be checked by dry run")
    assert await versions(kube, namespace) == objects, "the dry runs wrote nothing"
    await quiet_for_resyncs(kube, smith, namespace, "calm")


async def test_fields_removed_from_the_bundle_disappear_and_other_managers_fields_stay(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    cm = config_map("settings", {"LOG_LEVEL": "info", "LEGACY_FLAG": "on"})
    cm["metadata"] |= {"labels": {"team": "a", "tier": "web"}, "annotations": {"example.com/note": "x"}}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"}}
    secret["stringData"] = {"USER": "app", "OLD_TOKEN": "t0"}
    await kube.create(bundle("trim", namespace, resource("settings", cm), resource("creds", secret)))
    await until_condition(kube, namespace, "trim", "Ready")
    # Another tool owns a key and a label of its own, by server-side apply, as kubectl or Argo CD would.
    theirs = config_map("settings", {"OWNED_ELSEWHERE": "yes"})
    theirs["metadata"] |= {"namespace": namespace, "labels": {"cost-center": "42"}}
    await kube.apply(theirs, field_manager="other-tool", force=False)

    def trim(spec: Json) -> None:
        obj = spec["resources"][0]["spec"]["object"]
        del obj["data"]["LEGACY_FLAG"]
        del obj["metadata"]["labels"]["tier"]
        del obj["metadata"]["annotations"]
        del spec["resources"][1]["spec"]["object"]["stringData"]["OLD_TOKEN"]

    await edit_bundle(kube, namespace, "trim", trim)

    async def trimmed() -> bool:
        got = await kube.get("v1", "ConfigMap", "settings", namespace)
        creds = await kube.get("v1", "Secret", "creds", namespace)
        return "LEGACY_FLAG" not in got["data"] and set(creds["data"]) == {"USER"}

    await eventually(trimmed, what="the removed fields to disappear")
    got = await kube.get("v1", "ConfigMap", "settings", namespace)
    assert got["data"] == {"LOG_LEVEL": "info", "OWNED_ELSEWHERE": "yes"}
    assert got["metadata"]["labels"] == {"team": "a", "cost-center": "42", BUNDLE_NAME_LABEL: "trim"}
    assert "example.com/note" not in (got["metadata"].get("annotations") or {})
    await until_condition(kube, namespace, "trim", "Ready")
    await quiet_for_resyncs(kube, smith, namespace, "trim", count=2)
    assert (await kube.get("v1", "ConfigMap", "settings", namespace))["data"]["OWNED_ELSEWHERE"] == "yes"


async def test_a_hand_edit_of_a_smith_field_is_put_back_and_other_fields_are_left(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    await kube.create(bundle("kept", namespace, resource("cm", config_map("cm", {"MODE": "fast"}))))
    await until_condition(kube, namespace, "kept", "Ready")
    # kubectl edit: an update that changes Smith's field and adds one of its own
    await patch_as(kube, namespace, "cm", {"data": {"MODE": "slow", "DEBUG": "1"}}, manager="kubectl-edit")

    async def put_back() -> bool:
        got = await kube.get("v1", "ConfigMap", "cm", namespace)
        return bool(got["data"] == {"MODE": "fast", "DEBUG": "1"})

    await eventually(put_back, what="MODE to be put back and DEBUG left alone")
    done = await until_condition(kube, namespace, "kept", "Ready")
    assert resource_condition(done, "cm", "Error").get("status") == "False", "one edit is no update cycle"


async def patch_as(kube: KubeClient, namespace: str, name: str, patch: Json, *, manager: str) -> Json:
    path = (await kube.resource("v1", "ConfigMap")).path(namespace, name)
    return await kube.request(
        "PATCH", path, params={"fieldManager": manager}, body=patch, content_type=MERGE_PATCH
    )


async def test_another_writer_fighting_smith_is_reported_as_an_update_cycle(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    await kube.create(bundle("fight", namespace, resource("cm", config_map("cm", {"MODE": "ours"}))))
    await until_condition(kube, namespace, "fight", "Ready")

    async def rewrite_forever() -> None:
        """Another controller that wants MODE=theirs and sets it whenever it sees anything else."""
        while True:
            got = await kube.get("v1", "ConfigMap", "cm", namespace)
            if got["data"].get("MODE") != "theirs":
                await patch_as(kube, namespace, "cm", {"data": {"MODE": "theirs"}}, manager="rewriter")
            await asyncio.sleep(0.05)

    rewriter = asyncio.create_task(rewrite_forever())
    try:
        done = await until_condition(kube, namespace, "fight", "Error", within=60)
    finally:
        rewriter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await rewriter
    error = resource_condition(done, "cm", "Error")
    assert error["reason"] == "TerminalError"
    assert "update cycle: data.MODE did not stick" in error["message"]
    assert "'rewriter'" in error["message"]

    # Smith no longer fights: what the other writer left stays.
    await asyncio.sleep(RESYNC_SECONDS * 1.5)
    assert (await kube.get("v1", "ConfigMap", "cm", namespace))["data"]["MODE"] == "theirs"
    # A change of the Bundle starts afresh.
    await edit_bundle(
        kube, namespace, "fight", lambda s: s["resources"][0]["spec"]["object"]["data"].update(MODE="new")
    )
    await until_condition(kube, namespace, "fight", "Ready")
    assert (await kube.get("v1", "ConfigMap", "cm", namespace))["data"]["MODE"] == "new"


@pytest.mark.parametrize("fix", ["adopt", "delete"])
async def test_a_resource_blocked_by_an_object_is_rerun_when_that_object_changes_or_goes(
    kube: KubeClient, namespace: str, smith_without_resync: Any, fix: str
) -> None:
    smith = smith_without_resync
    stranger = config_map("taken", {"owner": "someone"})
    stranger["metadata"]["namespace"] = namespace
    await kube.create(stranger)
    await kube.create(
        bundle("blocked", namespace, resource("taken", config_map("taken", {"owner": "smith"})))
    )
    stuck = await until_condition(kube, namespace, "blocked", "Error")
    assert "has no controller" in resource_condition(stuck, "taken", "Error")["message"]
    target = ("v1", "ConfigMap", namespace, "taken")

    async def watched() -> bool:  # the reconcile that wrote the status goes on to start the watch
        return target in smith.controller.by_name.watched()

    await eventually(watched, within=5, what="the object in the way to be watched")
    assert (await kube.get("v1", "ConfigMap", "taken", namespace))["data"] == {"owner": "someone"}

    if fix == "adopt":
        owner = {
            "apiVersion": API_VERSION,
            "kind": "Bundle",
            "name": "blocked",
            "uid": stuck["metadata"]["uid"],
            "controller": True,
        }
        await kube.patch(
            "v1", "ConfigMap", "taken", {"metadata": {"ownerReferences": [owner]}}, namespace=namespace
        )
    else:
        await kube.delete("v1", "ConfigMap", "taken", namespace=namespace)
    await until_condition(kube, namespace, "blocked", "Ready")
    got = await kube.get("v1", "ConfigMap", "taken", namespace)
    assert got["data"] == {"owner": "smith"}
    assert got["metadata"]["labels"][BUNDLE_NAME_LABEL] == "blocked"

    async def unwatched() -> bool:
        return target not in smith.controller.by_name.watched()

    await eventually(unwatched, within=5, what="the watch to stop once the object does not block")


def autoscaled(name: str) -> list[Json]:
    """A Deployment (with the config it reads) and its HorizontalPodAutoscaler (autoscaling/v2), whose
    spec the server completes with a default (`minReplicas: 1`) that the Bundle never mentions."""
    config, creds, app, _ = web_app(name)
    deployment = app["spec"]["object"]
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "maxReplicas": 5,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                }
            ],
        },
    }
    return [config, creds, resource("web", deployment), resource("hpa", hpa, depends_on=["web"])]


async def test_an_hpa_the_server_fills_in_is_applied_once_and_then_left_alone(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    await kube.create(bundle("scaled", namespace, *autoscaled("web")))
    await roll_out(kube, namespace, "web")

    async def hpa_made() -> bool:
        got = await get_bundle(kube, namespace, "scaled")
        return resource_condition(got, "hpa", "InProgress").get("status") == "True"

    await eventually(hpa_made, what="the HPA to be created and waiting for its conditions")
    stored = await kube.get("autoscaling/v2", "HorizontalPodAutoscaler", "web", namespace)
    assert stored["spec"]["minReplicas"] == 1, "a server default"
    await resyncs_write_nothing(kube, smith, namespace, "scaled")  # not READY: passed on every resync


async def roll_out(kube: KubeClient, namespace: str, name: str) -> None:
    """Say the Deployment's rollout is done, as the controller-manager would (this plane has none)."""

    async def made() -> bool:
        return bool((await kube.list("apps/v1", "Deployment", namespace))["items"])

    await eventually(made, what=f"Deployment {name}")
    replicas = dict.fromkeys(("replicas", "updatedReplicas", "readyReplicas", "availableReplicas"), 2)
    status = {"status": {"observedGeneration": 1, **replicas}}
    await kube.patch("apps/v1", "Deployment", name, status, namespace=namespace, subresource="status")


async def test_a_verdict_that_changes_with_time_alone_is_reached_by_resync(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    """An HPA whose ScalingActive is False becomes an error once that has lasted 5 minutes: no event
    says so, the resync does."""
    await kube.create(bundle("slow", namespace, *autoscaled("web")))
    await roll_out(kube, namespace, "web")

    async def hpa_exists() -> bool:
        return bool((await kube.list("autoscaling/v2", "HorizontalPodAutoscaler", namespace))["items"])

    await eventually(hpa_exists, what="the HPA")
    almost = datetime.now(UTC) - timedelta(minutes=5) + timedelta(seconds=RESYNC_SECONDS)
    conditions = [
        {
            "type": "AbleToScale",
            "status": "True",
            "reason": "SucceededGetScale",
            "lastTransitionTime": rfc3339(almost),
        },
        {
            "type": "ScalingActive",
            "status": "False",
            "reason": "FailedGetResourceMetric",
            "message": "no metrics returned from resource metrics API",
            "lastTransitionTime": rfc3339(almost),
        },
    ]
    status = {"status": {"currentReplicas": 2, "desiredReplicas": 2, "conditions": conditions}}
    await kube.patch(
        "autoscaling/v2", "HorizontalPodAutoscaler", "web", status, namespace=namespace, subresource="status"
    )

    async def waiting() -> bool:
        got = await get_bundle(kube, namespace, "slow")
        return "ScalingActive is False" in resource_condition(got, "hpa", "InProgress").get("message", "")

    await eventually(waiting, what="the HPA to wait while ScalingActive is False")
    done = await until_condition(kube, namespace, "slow", "Error", within=RESYNC_SECONDS * 5)
    error = resource_condition(done, "hpa", "Error")
    assert error["reason"] == "RetriableError"
    assert "ScalingActive has been False for over 5 minutes" in error["message"]
