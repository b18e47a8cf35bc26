"""CEL in Bundles on the real plane: `${...}` values read from dependencies with their types, checked by
the API server's own validation of what Smith applies; `includeWhen` leaving a resource out and
deleting it; `readyWhen` holding back dependents until the object says so; a bad expression costing its
own resource an error, never the rest of the Bundle."""

from __future__ import annotations

from typing import Any

import pytest

from live import (
    bundle,
    deployment_object,
    edit_bundle,
    exists,
    get_bundle,
    resource_condition,
    until_condition,
    until_resource,
)
from smith_kube import KubeClient
from smith_kube.client import MERGE_PATCH
from support import config_map, eventually, resource

pytestmark = pytest.mark.controlplane


def web_app(name: str, namespace: str, *, ingress: bool) -> dict[str, Any]:
    """An app as a platform team writes it: a database Secret (stringData), settings read from it, a
    Deployment and a Service whose numbers come from the settings, an Ingress only where asked for."""
    db = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db"},
        "stringData": {"host": "db-1.internal", "port": "5432"},
    }
    settings = config_map(
        "settings",
        {
            "url": "postgres://${string(base64.decode(db.data.host))}:${string(base64.decode(db.data.port))}",
            "replicas": "3",
            "port": "8080",
            "ingress": "true" if ingress else "false",
        },
    )
    deployment = deployment_object("web", replicas=1)
    deployment["spec"]["replicas"] = "${int(settings.data.replicas)}"
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [{"name": "DATABASE_URL", "value": "${settings.data.url}"}]
    container["ports"] = [{"containerPort": "${int(settings.data.port)}"}]
    container["resources"] = {"requests": {"cpu": "0.5", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"app": "web"},
            "ports": [{"port": 80, "targetPort": "${int(settings.data.port)}"}],
        },
    }
    ingress_object = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "web"},
        "spec": {
            "rules": [
                {
                    "host": "${web.metadata.name + '.' + web.metadata.namespace + '.example.com'}",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "web", "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ]
        },
    }
    return bundle(
        name,
        namespace,
        resource("db", db),
        resource("settings", settings),
        resource("web", deployment),
        resource("web-svc", service),
        {**resource("web-ingress", ingress_object), "includeWhen": ["${settings.data.ingress == 'true'}"]},
    )


@pytest.mark.fullplane  # the Deployment rolls out
async def test_expressions_give_typed_values_the_api_server_accepts_and_include_when_follows_edits(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    await kube.create(web_app("app", namespace, ingress=False))
    done = await until_condition(kube, namespace, "app", "Ready", within=60)
    assert resource_condition(done, "web-ingress", "Ready")["reason"] == "Excluded"
    assert not await exists(kube, "networking.k8s.io/v1", "Ingress", "web", namespace)
    stored = await kube.get("apps/v1", "Deployment", "web", namespace)
    assert stored["spec"]["replicas"] == 3  # an int, as the schema wants it
    container = stored["spec"]["template"]["spec"]["containers"][0]
    assert container["env"] == [{"name": "DATABASE_URL", "value": "postgres://db-1.internal:5432"}]
    assert container["ports"][0]["containerPort"] == 8080
    assert container["resources"]["requests"]["cpu"] == "500m"
    service = await kube.get("v1", "Service", "web", namespace)
    assert service["spec"]["ports"][0]["targetPort"] == 8080
    # the Deployment reads the settings, the settings the Secret: each waits for what it reads
    owners = {o["name"] for o in stored["metadata"]["ownerReferences"] if not o.get("controller")}
    assert owners == {"settings"}

    def ingress_on(spec: dict[str, Any]) -> None:
        spec["resources"][1]["spec"]["object"]["data"]["ingress"] = "true"

    await edit_bundle(kube, namespace, "app", ingress_on)

    async def made() -> bool:
        return await exists(kube, "networking.k8s.io/v1", "Ingress", "web", namespace)

    await eventually(made, within=30, what="the Ingress once includeWhen holds")
    ingress = await kube.get("networking.k8s.io/v1", "Ingress", "web", namespace)
    assert ingress["spec"]["rules"][0]["host"] == f"web.{namespace}.example.com"

    def ingress_off(spec: dict[str, Any]) -> None:
        spec["resources"][1]["spec"]["object"]["data"]["ingress"] = "false"

    await edit_bundle(kube, namespace, "app", ingress_off)

    async def gone() -> bool:
        return not await exists(kube, "networking.k8s.io/v1", "Ingress", "web", namespace)

    await eventually(gone, within=30, what="the Ingress deleted once includeWhen no longer holds")
    await until_condition(kube, namespace, "app", "Ready")


async def test_ready_when_holds_dependents_back_until_the_object_says_so(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    gate = {
        **resource("gate", config_map("gate", {"a": "1"})),
        "readyWhen": ["${has(self.data.open) && self.data.open == 'yes'}"],
    }
    await kube.create(bundle("gated", namespace, gate, resource("after", depends_on=["gate"])))
    waiting = await until_resource(kube, namespace, "gated", "gate", "InProgress")
    assert "readyWhen" in resource_condition(waiting, "gate", "InProgress")["message"]
    assert not await exists(kube, "v1", "ConfigMap", "after", namespace)
    # someone else (a job, an operator) says it is open: a field the Bundle does not set, kept by Smith
    opened = {"data": {"open": "yes"}}
    await kube.patch("v1", "ConfigMap", "gate", opened, namespace=namespace, content_type=MERGE_PATCH)
    await until_condition(kube, namespace, "gated", "Ready")
    assert await exists(kube, "v1", "ConfigMap", "after", namespace)


async def test_a_bad_expression_is_its_resources_error_and_the_rest_converges(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    source = config_map("source", {"v": "1"})
    typo = config_map("typo", {"v": "${source.data.v + sourse.data.v}"})
    costly = config_map("costly", {"v": "${source.data.v.replace('x', source.data.v).replace('x', 'yy')}"})
    looped = config_map("looped", {"n": "${string(keys.data.map(a, keys.data.map(b, b)).size())}"})
    keys = config_map("keys", {f"k{i}": "v" for i in range(150)})
    await kube.create(
        bundle(
            "bad",
            namespace,
            resource("source", source),
            resource("typo", typo),
            resource("fine", config_map("fine", {"v": "${source.data.v}"})),
        )
    )
    bad = await until_resource(kube, namespace, "bad", "typo", "Error")
    message = resource_condition(bad, "typo", "Error")["message"]
    assert "undeclared reference to 'sourse.data.v'" in message
    assert "${source.data.v + sourse.data.v}" in message
    await until_resource(kube, namespace, "bad", "fine", "Ready")
    assert (await kube.get("v1", "ConfigMap", "fine", namespace))["data"]["v"] == "1"
    assert not await exists(kube, "v1", "ConfigMap", "typo", namespace)

    def expensive(spec: dict[str, Any]) -> None:
        spec["resources"][0]["spec"]["object"]["data"] = {
            "v": "x" * 2000,
            **{f"k{i}": "v" for i in range(150)},
        }
        spec["resources"] += [resource("costly", costly), resource("keys", keys), resource("looped", looped)]

    await edit_bundle(kube, namespace, "bad", expensive)
    refused = await until_resource(kube, namespace, "bad", "costly", "Error")
    assert "exceeds the limit of 1,000,000" in resource_condition(refused, "costly", "Error")["message"]
    stopped = await until_resource(kube, namespace, "bad", "looped", "Error")  # estimated cheap, ran long
    assert "iteration budget" in resource_condition(stopped, "looped", "Error")["message"]
    await until_resource(kube, namespace, "bad", "fine", "Ready")
    assert (await get_bundle(kube, namespace, "bad"))["metadata"]["generation"] == 2


async def test_an_external_secret_is_waited_for_watched_read_and_never_written(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    ref = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db-credentials"}}
    url = "postgres://${string(base64.decode(db_credentials.data.user))}@db:5432"
    await kube.create(
        bundle(
            "ext",
            namespace,
            {"name": "db-credentials", "externalRef": ref},
            resource("client", config_map("client", {"url": url})),
        )
    )
    waiting = await until_resource(kube, namespace, "ext", "db-credentials", "Blocked")
    blocked = resource_condition(waiting, "db-credentials", "Blocked")
    assert blocked["reason"] == "ExternalObjectNotFound"
    assert "waiting for Secret db-credentials to exist" in blocked["message"]
    secret = {**ref, "metadata": {"name": "db-credentials", "namespace": namespace}}
    await kube.create({**secret, "stringData": {"user": "app", "password": "hunter2-never-in-status"}})
    await until_condition(kube, namespace, "ext", "Ready")  # told by the by-name watch, no resync
    assert (await kube.get("v1", "ConfigMap", "client", namespace))["data"]["url"] == "postgres://app@db:5432"

    patched = await kube.patch(
        "v1", "Secret", "db-credentials", {"stringData": {"user": "app2"}}, namespace=namespace
    )

    async def followed() -> bool:
        got = await kube.get("v1", "ConfigMap", "client", namespace)
        return bool(got["data"]["url"] == "postgres://app2@db:5432")

    await eventually(followed, what="the client to follow the external Secret")
    stored = await kube.get("v1", "Secret", "db-credentials", namespace)
    assert stored["metadata"]["resourceVersion"] == patched["metadata"]["resourceVersion"]  # never written
    assert "labels" not in stored["metadata"]
    assert "ownerReferences" not in stored["metadata"]
    status = str((await get_bundle(kube, namespace, "ext"))["status"])
    assert "hunter2" not in status


async def test_for_each_makes_an_object_per_element_and_follows_the_list(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    settings = config_map("settings", {"environments": "dev,staging"})
    template = config_map("app-${each}", {"env": "${each}", "url": "https://${each}.example.com"})
    envs = {**resource("envs", template), "forEach": "${settings.data.environments.split(',')}"}
    summary = config_map("summary", {"count": "${string(size(envs))}"})
    await kube.create(
        bundle("each", namespace, resource("settings", settings), envs, resource("summary", summary))
    )
    done = await until_condition(kube, namespace, "each", "Ready")
    assert resource_condition(done, "envs", "Ready")["message"] == "2 of 2 objects ready"
    made = await kube.list("v1", "ConfigMap", namespace, label_selector="smith.atlassian.com/BundleName=each")
    names = {o["metadata"]["name"] for o in made["items"]}
    assert names == {"settings", "app-dev", "app-staging", "summary"}
    dev = await kube.get("v1", "ConfigMap", "app-dev", namespace)
    assert dev["data"] == {"env": "dev", "url": "https://dev.example.com"}
    assert (await kube.get("v1", "ConfigMap", "summary", namespace))["data"]["count"] == "2"

    def shrink(spec: dict[str, Any]) -> None:
        spec["resources"][0]["spec"]["object"]["data"]["environments"] = "dev,prod"

    await edit_bundle(kube, namespace, "each", shrink)

    async def followed() -> bool:
        there = await kube.list(
            "v1", "ConfigMap", namespace, label_selector="smith.atlassian.com/BundleName=each"
        )
        return {o["metadata"]["name"] for o in there["items"]} == {
            "settings",
            "app-dev",
            "app-prod",
            "summary",
        }

    await eventually(followed, what="app-staging deleted and app-prod made")
    await until_condition(kube, namespace, "each", "Ready")
