"""Bundles written for Atlassian's Smith, applied as written, and the errors Smith gives for what it
cannot do: each says what is wrong, is terminal when no retry can help, and leaves the rest alone."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
import yaml

from live import (
    RESYNC_SECONDS,
    Json,
    bundle,
    condition,
    get_bundle,
    resource_condition,
    until_condition,
    until_resource,
)
from smith_engine.model import API_VERSION
from smith_kube import ConflictError, KubeClient, NotFoundError
from support import config_map, crd_object, eventually, resource

pytestmark = pytest.mark.controlplane

# Smith's README, as written (including its Deployment, which has `bundle:` where `template:` belongs).
SMITH_README_BUNDLE = """
apiVersion: smith.atlassian.com/v1
kind: Bundle
metadata:
  name: bundle1
spec:
  resources:
  - name: db1
    spec:
      object:
        apiVersion: smith.atlassian.com/v1
        kind: PostgresqlResource
        metadata:
          name: db1
        spec:
          disk: 100GiB
  - name: app1
    references:
    - resource: db1
    spec:
      object:
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: app1
        spec:
          replicas: 1
          bundle:
            metadata:
              labels:
                app: app1
            spec:
              containers:
              - name: app1
                image: quay.io/some/app1
"""


async def test_smiths_readme_bundle_is_accepted_and_its_mistake_named_by_the_server(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    with contextlib.suppress(ConflictError):
        await kube.create(
            crd_object(
                "smith.atlassian.com", "PostgresqlResource", **{"smith.atlassian.com/SupportEnabled": "true"}
            )
        )
    written: Json = yaml.safe_load(SMITH_README_BUNDLE)
    written["metadata"]["namespace"] = namespace
    stored = await kube.create(written)  # the CRD takes a reference with only `resource`
    assert stored["spec"]["resources"][1]["references"] == [{"resource": "db1"}]

    async def settled() -> bool:
        got = await get_bundle(kube, namespace, "bundle1")
        return resource_condition(got, "app1", "Error").get("status") == "True"

    await eventually(settled, within=60, what="app1 to be tried once db1 is ready")
    got = await get_bundle(kube, namespace, "bundle1")
    assert resource_condition(got, "db1", "Ready")["status"] == "True"
    error = resource_condition(got, "app1", "Error")
    assert error["reason"] == "TerminalError"
    assert error["message"] == "spec.bundle: field not declared in schema"
    assert (await kube.get(f"{API_VERSION}", "PostgresqlResource", "db1", namespace))["spec"] == {
        "disk": "100GiB"
    }


async def test_output_references_and_jsonpath_filters_as_in_smiths_examples(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "service1"},
        "spec": {
            "selector": {"role": "app"},
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP"},
                {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080},
            ],
        },
    }
    backend = {
        "name": "{{service1#metadata.name}}",
        "port": {"number": '{{service1#spec.ports[?(@.protocol=="TCP")].port}}'},
    }
    ingress = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "ingress1"},
        "spec": {
            "rules": [
                {"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": backend}}]}}
            ]
        },
    }
    settings = config_map(
        "settings", {"tcp": "port !{tcp-port}", "url": "http://{{service1#metadata.name}}:!{tcp-port}"}
    )
    settings["metadata"]["labels"] = "{{service1#spec.selector}}"
    refs = [{"name": "tcp-port", "resource": "service1", "path": 'spec.ports[?(@.protocol=="TCP")].port'}]
    await kube.create(
        bundle(
            "outputs",
            namespace,
            resource("service1", service),
            resource("ingress1", ingress, depends_on=["service1"]),
            resource("settings", settings, references=refs),
        )
    )
    await until_condition(kube, namespace, "outputs", "Ready")
    made = await kube.get("networking.k8s.io/v1", "Ingress", "ingress1", namespace)
    stored = made["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert stored == {"name": "service1", "port": {"number": 80}}, "a whole marker keeps the number"
    cm = await kube.get("v1", "ConfigMap", "settings", namespace)
    assert cm["data"] == {"tcp": "port 80", "url": "http://service1:80"}
    assert cm["metadata"]["labels"]["role"] == "app", "a whole marker keeps the map"


async def test_a_path_selecting_several_values_is_an_error_on_its_resource(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    source = config_map("source", {"a": "1", "b": "2"})
    target = config_map("target", {"v": "!{any}"})
    refs = [{"name": "any", "resource": "source", "path": "data.*"}]
    await kube.create(
        bundle("vague", namespace, resource("source", source), resource("target", target, references=refs))
    )
    done = await until_condition(kube, namespace, "vague", "Error")
    error = resource_condition(done, "target", "Error")
    assert error["reason"] == "TerminalError"
    # the values are not told: a path into a Secret would show its values
    assert error["message"] == (
        "reference 'any' to 'source': data.* selects 2 values (data.a, data.b); a reference needs exactly one"
    )
    assert resource_condition(done, "source", "Ready")["status"] == "True"


async def test_a_controller_owner_reference_is_an_error_of_its_resource_alone(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    """As Go Smith: the object is not made, its dependents wait, and the rest of the Bundle goes on."""
    cm = config_map("cm")
    cm["metadata"]["ownerReferences"] = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "1", "controller": True}
    ]
    after = resource("after", config_map("after"), depends_on=["cm"])
    await kube.create(bundle("claimed", namespace, resource("cm", cm), after, resource("other")))
    done = await until_condition(kube, namespace, "claimed", "Error")
    error = resource_condition(done, "cm", "Error")
    assert error["reason"] == "TerminalError"
    assert error["message"] == (
        "metadata.ownerReferences must not name a controller: "
        "Smith makes the Bundle the controller of every object"
    )
    assert resource_condition(done, "after", "Blocked")["status"] == "True"
    await until_resource(kube, namespace, "claimed", "other", "Ready")
    with pytest.raises(NotFoundError):
        await kube.get("v1", "ConfigMap", "cm", namespace)


async def test_what_smith_cannot_do_is_a_terminal_error_that_says_why(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    template = {  # a kind no executor serves
        "apiVersion": "v1",
        "kind": "PodTemplate",
        "metadata": {"name": "reader"},
        "template": {"spec": {"containers": [{"name": "r", "image": "registry.example.com/r:1"}]}},
    }
    await kube.create(
        bundle(
            "limits",
            namespace,
            resource(
                "ns", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"{namespace}-extra"}}
            ),
            resource("template", template),
            resource("typo", config_map("typo", {"replicas": 5})),
            resource("fine", config_map("fine", {"k": "v"})),
        )
    )

    async def all_reported() -> bool:
        got = await get_bundle(kube, namespace, "limits")
        return all(
            resource_condition(got, n, "Error").get("status") == "True" for n in ("ns", "template", "typo")
        )

    await eventually(all_reported, what="every refusal to be reported")
    done = await get_bundle(kube, namespace, "limits")
    errors = {n: resource_condition(done, n, "Error") for n in ("ns", "template", "typo")}
    assert {e["reason"] for e in errors.values()} == {"TerminalError"}
    assert errors["ns"]["message"].startswith(
        "Namespace is cluster-scoped: its objects cannot live in a Bundle"
    )
    assert errors["template"]["message"].startswith(
        "Smith does not manage PodTemplate: it manages ConfigMap, "
    )
    assert errors["typo"]["message"] == "data.replicas: expected string, got number"
    assert condition(done, "Error")["reason"] == "TerminalError"
    assert resource_condition(done, "fine", "Ready")["status"] == "True"
    # Nothing is in those resources' way: no watch for them (a watch is a connection to the API server)
    assert not {t for t in smith.controller.by_name.watched() if t[2] == namespace}

    def typo_verdicts() -> list[str]:
        spans = smith.spans.get_finished_spans()
        return [
            str(s.attributes.get("smith.verdict", ""))
            for s in spans
            if s.name == "apply"
            and s.attributes.get("smith.bundle") == f"{namespace}/limits"
            and s.attributes.get("smith.resource") == "typo"
        ]

    async def resynced() -> bool:
        return len(typo_verdicts()) >= 3

    await eventually(resynced, within=RESYNC_SECONDS * 5, what="resyncs")
    assert typo_verdicts()[1:] == ["Invalid"] * (len(typo_verdicts()) - 1), "refused once, not sent again"
    for api_version, kind, name in (("v1", "Namespace", f"{namespace}-extra"), ("v1", "ConfigMap", "typo")):
        with pytest.raises(NotFoundError):
            await kube.get(api_version, kind, name, None if kind == "Namespace" else namespace)
