"""Smith's rules for Deployments and ServiceInstances on the real control plane: an HPA owns the replica
count until the Bundle changes its own (LastAppliedReplicas), a changed ConfigMap or Secret rolls the
pods that read it (envRefHash), a changed parametersFrom Secret bumps updateRequests."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from live import (
    RESYNC_SECONDS,
    Json,
    bundle,
    deployment_object,
    edit_bundle,
    get_bundle,
    resource_condition,
)
from smith_engine.workloads import ENV_REF_HASH, LAST_APPLIED_REPLICAS, SECRET_PARAMETERS_CHECKSUM
from smith_kube import KubeClient
from support import config_map, eventually, resource

pytestmark = pytest.mark.controlplane


def template_hash(deployment: Json) -> str:
    return str(deployment["spec"]["template"]["metadata"]["annotations"][ENV_REF_HASH])


async def until_hash_changes(kube: KubeClient, namespace: str, name: str, old: str) -> Json:
    found: Json = {}

    async def changed() -> bool:
        nonlocal found
        found = await kube.get("apps/v1", "Deployment", name, namespace)
        return template_hash(found) != old

    await eventually(changed, what="the pod template's envRefHash to change")
    return found


async def test_a_changed_config_map_rolls_the_pods_that_read_it(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    """One ConfigMap in the Bundle, one Secret outside it (kept by another team): a change of either
    changes the pod template; a Secret that is not there yet blocks the Deployment until it is."""
    app = deployment_object("app", replicas=1, env_from=[{"configMapRef": {"name": "settings"}}])
    app["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "shared", "key": "token"}}}
    ]
    settings = config_map("settings", {"MODE": "fast"})
    await kube.create(bundle("cfg", namespace, resource("settings", settings), resource("app", app)))

    async def blocked() -> bool:
        got = await get_bundle(kube, namespace, "cfg")
        return "Secret 'shared' not found" in resource_condition(got, "app", "Blocked").get("message", "")

    await eventually(blocked, what="the Deployment to wait for the Secret it reads")
    shared = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "shared", "namespace": namespace}}
    shared["stringData"] = {"token": "one"}
    await kube.create(shared)

    async def made() -> bool:
        got = await kube.list("apps/v1", "Deployment", namespace)
        return bool(got["items"])

    await eventually(made, what="the Deployment once the Secret is there (its watch re-runs the Bundle)")
    first = template_hash(await kube.get("apps/v1", "Deployment", "app", namespace))

    await edit_bundle(
        kube, namespace, "cfg", lambda s: s["resources"][0]["spec"]["object"]["data"].update(MODE="slow")
    )
    second = template_hash(await until_hash_changes(kube, namespace, "app", first))

    await kube.patch("v1", "Secret", "shared", {"stringData": {"token": "two"}}, namespace=namespace)
    rolled = await until_hash_changes(kube, namespace, "app", second)
    assert rolled["metadata"]["generation"] >= 3, "each change is a new pod template: a rollout"


async def test_a_changed_parameters_secret_bumps_update_requests(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    params = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db-params"}}
    params["stringData"] = {"size": "small"}
    instance = {
        "apiVersion": "servicecatalog.k8s.io/v1beta1",
        "kind": "ServiceInstance",
        "metadata": {"name": "db"},
        "spec": {
            "clusterServiceClassExternalName": "database",
            "clusterServicePlanExternalName": "standard",
            "parametersFrom": [{"secretKeyRef": {"name": "db-params", "key": "size"}}],
        },
    }
    await kube.create(
        bundle(
            "params", namespace, resource("params", params), resource("db", instance, depends_on=["params"])
        )
    )

    async def created() -> bool:
        found = await kube.list("servicecatalog.k8s.io/v1beta1", "ServiceInstance", namespace)
        return bool(found["items"])

    await eventually(created, what="the ServiceInstance")
    made = await kube.get("servicecatalog.k8s.io/v1beta1", "ServiceInstance", "db", namespace)
    checksum = made["metadata"]["annotations"][SECRET_PARAMETERS_CHECKSUM]
    assert made["spec"].get("updateRequests", 0) == 0

    def resize(spec: Json) -> None:
        spec["resources"][0]["spec"]["object"]["stringData"] = {"size": "large"}

    await edit_bundle(kube, namespace, "params", resize)

    async def bumped() -> bool:
        got = await kube.get("servicecatalog.k8s.io/v1beta1", "ServiceInstance", "db", namespace)
        return bool(got["spec"].get("updateRequests") == 1)

    await eventually(bumped, what="updateRequests to go up once")
    got = await kube.get("servicecatalog.k8s.io/v1beta1", "ServiceInstance", "db", namespace)
    assert got["metadata"]["annotations"][SECRET_PARAMETERS_CHECKSUM] != checksum


def autoscaled(min_replicas: int) -> list[Json]:
    app = deployment_object("web", replicas=1)
    container = app["spec"]["template"]["spec"]["containers"][0]
    container["resources"] = {"requests": {"cpu": "250m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": min_replicas,
            "maxReplicas": 10,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                }
            ],
        },
    }
    return [resource("web", app), resource("hpa", hpa, depends_on=["web"])]


@pytest.mark.fullplane
async def test_an_hpa_owns_the_replicas_until_the_bundle_changes_its_own(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    """The HPA raises the Deployment to its minReplicas (it does so without metrics, though it is not
    READY without them); Smith, resyncing, keeps that count instead of fighting it, until the Bundle asks
    for another."""
    await kube.create(bundle("scaled", namespace, *autoscaled(min_replicas=3)))

    async def scaled_to(n: int) -> bool:
        found = await kube.list("apps/v1", "Deployment", namespace)
        return [d["spec"]["replicas"] for d in found["items"]] == [n]

    await eventually(lambda: scaled_to(3), within=60, what="the HPA to scale the Deployment to 3")
    await asyncio.sleep(3 * RESYNC_SECONDS)  # resyncs: Smith looks again, and leaves the HPA's count
    assert await scaled_to(3)
    web = await kube.get("apps/v1", "Deployment", "web", namespace)
    assert web["metadata"]["annotations"][LAST_APPLIED_REPLICAS] == "1"
    assert resource_condition(await get_bundle(kube, namespace, "scaled"), "web", "Ready")["status"] == "True"

    def ask_for_five(spec: Json) -> None:
        spec["resources"][0]["spec"]["object"]["spec"]["replicas"] = 5

    await edit_bundle(kube, namespace, "scaled", ask_for_five)
    await eventually(lambda: scaled_to(5), what="the Bundle's own change to win")
    web = await kube.get("apps/v1", "Deployment", "web", namespace)
    assert web["metadata"]["annotations"][LAST_APPLIED_REPLICAS] == "5"
    error = resource_condition(await get_bundle(kube, namespace, "scaled"), "web", "Error")
    assert error.get("status") != "True", "no update cycle: Smith did not fight the HPA"
