"""Service Catalog: instance -> binding -> an app that reads the binding's credentials through
`bindsecret` references; a failing instance; parameters that change."""

from __future__ import annotations

from typing import Any

import pytest

from live import (
    bundle,
    condition,
    deployment_object,
    edit_bundle,
    exists,
    get_bundle,
    resource_condition,
    until_condition,
)
from smith_engine.model import BUNDLE_NAME_LABEL
from smith_kube import KubeClient
from support import eventually, resource, service_instance

pytestmark = pytest.mark.controlplane

SC = "servicecatalog.k8s.io/v1beta1"


instance = service_instance


def binding(name: str, instance_name: str) -> dict[str, Any]:
    return {
        "apiVersion": SC,
        "kind": "ServiceBinding",
        "metadata": {"name": name},
        "spec": {"instanceRef": {"name": instance_name}, "secretName": f"{name}-credentials"},
    }


async def test_app_reads_the_binding_credentials_through_bindsecret(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    app = deployment_object("consumer", replicas=1)
    app["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "QUEUE_URL", "value": "!{url}"},
        {"name": "QUEUE_PASSWORD", "value": "!{password}"},
    ]
    refs = [
        {"name": "url", "resource": "binding", "path": "data.url", "modifier": "bindsecret"},
        {"name": "password", "resource": "binding", "path": "data.password", "modifier": "bindsecret"},
    ]
    await kube.create(
        bundle(
            "catalog",
            namespace,
            resource("queue", instance("queue", retention=4)),
            resource("binding", binding("queue-binding", "queue"), depends_on=["queue"]),
            resource("consumer", app, references=refs),
        )
    )

    async def deployed() -> bool:
        try:
            made = await kube.get("apps/v1", "Deployment", "consumer", namespace)
        except Exception:
            return False
        return bool(made["spec"]["template"]["spec"]["containers"][0]["env"])

    await eventually(deployed, what="the consumer Deployment")
    made = await kube.get("apps/v1", "Deployment", "consumer", namespace)
    assert made["spec"]["template"]["spec"]["containers"][0]["env"] == [
        {"name": "QUEUE_URL", "value": "https://queue.queue.example.com"},
        {"name": "QUEUE_PASSWORD", "value": "s3cr3t"},
    ]

    # the status write of the reconcile that applied the Deployment may still be on its way
    async def both_ready() -> bool:
        status = await get_bundle(kube, namespace, "catalog")
        return all(
            resource_condition(status, n, "Ready").get("status") == "True" for n in ("queue", "binding")
        )

    await eventually(both_ready, what="the instance and the binding Ready in the Bundle's status")


async def test_failing_instance_is_an_error_naming_the_resource_and_the_broker_message(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    await kube.create(
        bundle("doomed", namespace, resource("db", instance("db", fail="quota exceeded for plan")))
    )
    done = await until_condition(kube, namespace, "doomed", "Error")
    error = condition(done, "Error")
    assert error["reason"] == "TerminalError"
    assert "resource 'db'" in error["message"]
    assert "broker: quota exceeded for plan" in error["message"]


async def test_parameter_changes_propagate_to_the_instance(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    await kube.create(bundle("params", namespace, resource("queue", instance("queue", retention=4))))
    await until_condition(kube, namespace, "params", "Ready")
    await edit_bundle(
        kube,
        namespace,
        "params",
        lambda s: s["resources"][0]["spec"]["object"]["spec"]["parameters"].update(retention=7),
    )

    async def reprovisioned() -> bool:
        got = await kube.get(SC, "ServiceInstance", "queue", namespace)
        return bool((got.get("status") or {}).get("provisionedParameters") == {"retention": 7})

    await eventually(reprovisioned, what="the broker to see the new parameters")


async def test_parameters_that_cannot_fit_the_plan_are_an_error_of_their_instance_alone(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    """The broker publishes plan `queue/standard` with a schema (retention: an integer); the reference's
    example says what the value will look like, and it does not fit: the instance is refused before it
    is created, and the rest of the Bundle goes on (as in Go Smith: a broker tightening a schema stops
    no other resource)."""
    refs = [{"name": "days", "resource": "config", "path": "data.days", "example": "four"}]
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "config"}, "data": {"days": "4"}}
    await kube.create(
        bundle(
            "unfit",
            namespace,
            resource("config", config),
            resource("queue", instance("queue", retention="!{days}"), references=refs),
        )
    )
    done = await until_condition(kube, namespace, "unfit", "Error")
    refused = resource_condition(done, "queue", "Error")
    assert refused["reason"] == "TerminalError", refused
    assert refused["message"] == (
        "the parameters do not fit plan 'plan-queue-standard''s schema: "
        "spec.parameters.retention: the value is not of type 'integer'"
    )
    assert resource_condition(done, "config", "Ready")["status"] == "True"
    made = (await kube.list("v1", "ConfigMap", namespace, label_selector=BUNDLE_NAME_LABEL))["items"]
    assert [m["metadata"]["name"] for m in made] == ["config"], "the rest went on"
    assert not await exists(kube, SC, "ServiceInstance", "queue", namespace), "the instance was not made"
