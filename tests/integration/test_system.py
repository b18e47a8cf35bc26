"""Smith end to end on the real control plane: a Bundle applied like kubectl would converges exactly
as the design says. Each test works in its own namespace."""

from __future__ import annotations

from typing import Any

import pytest

from smith_engine.model import API_VERSION
from smith_kube import KubeClient, NotFoundError
from support import eventually, resource

pytestmark = pytest.mark.controlplane

Json = dict[str, Any]


def bundle(name: str, namespace: str, *resources: Json) -> Json:
    return {
        "apiVersion": API_VERSION,
        "kind": "Bundle",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"resources": list(resources)},
    }


async def get_bundle(kube: KubeClient, namespace: str, name: str) -> Json:
    return await kube.get(API_VERSION, "Bundle", name, namespace)


def condition(obj: Json, kind: str) -> Json:
    found: Json = next(
        (c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == kind), {}
    )
    return found


def resource_condition(obj: Json, name: str, kind: str) -> Json:
    for entry in (obj.get("status") or {}).get("resourceStatuses") or []:
        if entry["name"] == name:
            found: Json = next((c for c in entry["conditions"] if c["type"] == kind), {})
            return found
    return {}


async def until_condition(
    kube: KubeClient, namespace: str, name: str, kind: str, *, within: float = 30
) -> Json:
    """Wait until the Bundle's condition `kind` is True; return the Bundle."""
    seen: Json = {}

    async def true() -> bool:
        nonlocal seen
        seen = await get_bundle(kube, namespace, name)
        return condition(seen, kind).get("status") == "True"

    try:
        await eventually(true, within=within, what=f"Bundle {name} {kind}")
    except AssertionError as e:
        raise AssertionError(f"{e}; last status: {seen.get('status')}") from None
    return seen


async def exists(kube: KubeClient, api_version: str, kind: str, name: str, namespace: str) -> bool:
    try:
        await kube.get(api_version, kind, name, namespace)
    except NotFoundError:
        return False
    return True


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
