"""Plugins on the real control plane, with the sample `app` plugin (services/plugin-app) served and
registered as in production: the CRD's "exactly one of an object and spec.plugin", the plugin's object
made in dependency order with the dependencies' values and remade when the spec changes, a spec refused
early by the plugin's schema, the plugin's own errors, a plugin nobody serves, and one that goes away."""

from __future__ import annotations

from typing import Any

import pytest

from live import (
    Json,
    bundle,
    edit_bundle,
    exists,
    get_bundle,
    resource_condition,
    until_condition,
    until_resource,
)
from smith_engine.model import BUNDLE_NAME_LABEL
from smith_kube import ApiError, KubeClient
from support import config_map, eventually, resource

pytestmark = pytest.mark.controlplane
SC = "servicecatalog.k8s.io/v1beta1"


async def test_a_resource_with_an_object_and_a_plugin_is_refused_by_the_crd(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    plugin = {"name": "app", "objectName": "web", "spec": {"image": "web:1"}}
    both = {"name": "web", "spec": {"plugin": plugin, "object": config_map("web")}}
    with pytest.raises(ApiError, match="exactly one of an object") as raised:
        await kube.create(bundle("both", namespace, both))
    assert raised.value.status == 422
    direct = {"name": "web", "spec": {"plugin": plugin, **config_map("web")}}
    with pytest.raises(ApiError, match="exactly one of an object"):
        await kube.create(bundle("direct", namespace, direct))
    nameless = {"name": "web", "spec": {"plugin": {"name": "app"}}}
    with pytest.raises(ApiError, match="objectName: Required value"):
        await kube.create(bundle("nameless", namespace, nameless))


def app(spec: Json, references: list[Json] | None = None, **fields: Any) -> Json:
    """A resource the sample `app` plugin makes (a Deployment named `web`)."""
    plugin = {"name": "app", "objectName": "web", "spec": spec}
    return {"name": "web", "spec": {"plugin": plugin}, "references": references or [], **fields}


HOST = [{"name": "host", "resource": "db", "path": "data.host", "example": "db.internal"}]


def container(deployment: Json) -> Json:
    found: Json = deployment["spec"]["template"]["spec"]["containers"][0]
    return found


async def until_deployment(kube: KubeClient, namespace: str, check: Any) -> Json:
    found: Json = {}

    async def made() -> bool:
        nonlocal found
        items = (await kube.list("apps/v1", "Deployment", namespace))["items"]
        found = items[0] if items else {}
        return bool(items) and bool(check(found))

    await eventually(made, what="the plugin's Deployment")
    return found


async def test_the_plugin_makes_the_object_in_order_and_remakes_it_when_the_spec_changes(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    db = resource("db", config_map("db", {"host": "db-1.internal"}))
    spec = {"image": "registry.example.com/web:1", "port": 8080, "env": {"DB_HOST": "!{host}"}}
    await kube.create(bundle("plugged", namespace, db, app(spec, HOST)))
    made = await until_deployment(kube, namespace, lambda d: True)
    assert container(made)["env"] == [{"name": "DB_HOST", "value": "db-1.internal"}], "a dependency's value"
    assert container(made)["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    cm = await kube.get("v1", "ConfigMap", "db", namespace)
    assert int(made["metadata"]["resourceVersion"]) > int(cm["metadata"]["resourceVersion"]), "after db"
    assert made["metadata"]["labels"][BUNDLE_NAME_LABEL] == "plugged"
    said = [{"name": "app", "status": "Ok", "group": "apps", "version": "v1", "kind": "Deployment"}]

    async def told() -> bool:  # the status is written at the end of the pass that made the Deployment
        got = await get_bundle(kube, namespace, "plugged")
        return bool((got.get("status") or {}).get("pluginStatuses") == said)

    await eventually(told, what="status.pluginStatuses")

    def new_image(s: Json) -> None:
        s["resources"][1]["spec"]["plugin"]["spec"]["image"] = "registry.example.com/web:2"

    await edit_bundle(kube, namespace, "plugged", new_image)
    await until_deployment(kube, namespace, lambda d: container(d)["image"].endswith("web:2"))


async def test_a_spec_that_cannot_fit_the_schema_is_refused_before_its_object_is_made(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    """Checked with the references' examples before `db` is READY; an error of `web` alone (as Go
    Smith's plugin schema check), so `db` is still made."""
    refs = [{"name": "port", "resource": "db", "path": "data.port", "example": "8080"}]  # a string
    db = resource("db", config_map("db", {"port": "8080"}))
    await kube.create(bundle("early", namespace, db, app({"image": "web:1", "port": "!{port}"}, refs)))
    done = await until_condition(kube, namespace, "early", "Error")
    error = resource_condition(done, "web", "Error")
    assert error["reason"] == "TerminalError"
    assert "spec.plugin.spec.port: the value is not of type 'integer'" in error["message"]
    await until_resource(kube, namespace, "early", "db", "Ready")
    assert not await exists(kube, "apps/v1", "Deployment", "web", namespace), "its object was not made"


async def test_what_the_plugin_cannot_make_is_a_terminal_error_on_its_resource(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    await kube.create(bundle("refused", namespace, app({"image": "web:1", "envFrom": ["nothere"]})))
    done = await until_condition(kube, namespace, "refused", "Error")
    error = resource_condition(done, "web", "Error")
    assert error["reason"] == "TerminalError"
    assert error["message"] == "plugin 'app': envFrom names 'nothere', which is not a dependency of 'web'"


async def test_a_plugin_nobody_serves_is_named_in_the_status(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    lost = {"name": "web", "spec": {"plugin": {"name": "nosuch", "objectName": "web", "spec": {}}}}
    await kube.create(bundle("orphaned", namespace, lost))
    done = await until_condition(kube, namespace, "orphaned", "Error")
    assert resource_condition(done, "web", "Error")["reason"] == "RetriableError"
    assert resource_condition(done, "web", "Error")["message"].startswith("no plugin 'nosuch' is registered")
    assert done["status"]["pluginStatuses"] == [{"name": "nosuch", "status": "NoSuchPlugin"}]


async def test_a_plugin_that_goes_away_is_a_retriable_error_until_it_comes_back(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    await smith.kill_plugin()
    try:
        await kube.create(bundle("patient", namespace, app({"image": "web:1"})))
        stuck = await until_condition(kube, namespace, "patient", "Error")
        error = resource_condition(stuck, "web", "Error")
        assert (error["reason"], "did not answer" in error["message"]) == ("RetriableError", True)
    finally:
        await smith.start_plugin()
    await until_deployment(kube, namespace, lambda d: container(d)["image"] == "web:1")


async def test_a_bindings_outputs_reach_the_plugin(kube: KubeClient, namespace: str, smith: Any) -> None:
    """The plugin gets each dependency's actual object and, for a ServiceBinding, the Secret it wrote,
    decoded: the sample plugin turns them into environment variables."""
    instance = {
        "apiVersion": SC,
        "kind": "ServiceInstance",
        "metadata": {"name": "queue"},
        "spec": {"clusterServiceClassExternalName": "queue", "clusterServicePlanExternalName": "standard"},
    }
    binding = {
        "apiVersion": SC,
        "kind": "ServiceBinding",
        "metadata": {"name": "queue-binding"},
        "spec": {"instanceRef": {"name": "queue"}, "secretName": "queue-binding-credentials"},
    }
    web = app({"image": "web:1", "envFrom": ["binding"]}, dependsOn=["binding"])
    await kube.create(
        bundle(
            "bound",
            namespace,
            resource("queue", instance),
            resource("binding", binding, depends_on=["queue"]),
            web,
        )
    )
    made = await until_deployment(kube, namespace, lambda d: True)
    assert container(made)["env"] == [
        {"name": "BINDING_PASSWORD", "value": "s3cr3t"},
        {"name": "BINDING_REGION", "value": "ap-southeast-2"},
        {"name": "BINDING_URL", "value": "https://queue.queue.example.com"},
    ]
